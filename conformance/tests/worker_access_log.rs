//! The worker's `--access-log` / `--access-log-debug` flags, run for real: records land in
//! the `{pid}`-expanded file, one per call, attributed to the protocol that owns each
//! method, and no argument value reaches them at either level.

use std::sync::Arc;

use anyhow::{Context as _, Result, ensure};
use arrow_array::{RecordBatch, StringArray};
use vgi_rpc::client::{CallOptions, Client, ConnectOptions, Target};
use vgi_rpc::transport::Address;

const WORKER: &str = env!("CARGO_BIN_EXE_vgi-rpc-conformance-worker");
const SECRET: &str = "s3cr3t-VALUE-do-not-log-91b2";

fn records(debug: bool) -> Result<Vec<serde_json::Value>> {
    let dir = std::env::temp_dir();
    let template = dir.join(format!("vgi-worker-access-{debug}-{{pid}}.jsonl"));
    let mut argv = vec![
        WORKER.to_owned(),
        "--pipe".to_owned(),
        "--access-log".to_owned(),
        template.display().to_string(),
    ];
    if debug {
        argv.push("--access-log-debug".to_owned());
    }
    let mut worker = Client::connect_with(&Address::Exec(argv), ConnectOptions::default())?;
    let pid = worker.worker_pid().context("no worker pid")?;
    let path = dir.join(format!("vgi-worker-access-{debug}-{pid}.jsonl"));
    let value = Arc::new(StringArray::from(vec![SECRET]));
    let batch = RecordBatch::try_from_iter([("value", value as _)])?;
    let conn = &mut worker;
    conn.call(
        &Target::new("ConformanceService", Some("2.0.0")),
        "echo_string",
        &batch,
        &CallOptions::default(),
    )?;
    conn.call(
        &Target::new("conformance.Secondary.v1", None),
        "echo_string",
        &batch,
        &CallOptions::default(),
    )?;
    drop(worker); // closes stdin; the worker exits and the log is complete
    let text = std::fs::read_to_string(&path).with_context(|| format!("{path:?}"))?;
    let _ = std::fs::remove_file(&path);
    ensure!(
        !text.contains(SECRET),
        "the argument leaked into the access log"
    );
    text.lines().map(|l| Ok(serde_json::from_str(l)?)).collect()
}

#[test]
fn worker_writes_one_record_per_call_without_values() -> Result<()> {
    for debug in [false, true] {
        let records = records(debug)?;
        ensure!(records.len() == 2, "{records:?}");
        ensure!(records[0]["protocol"] == "ConformanceService");
        ensure!(records[1]["protocol"] == "conformance.Secondary.v1");
        ensure!(records[0]["protocol_hash"] != records[1]["protocol_hash"]);
        for r in &records {
            ensure!(r["logger"] == "vgi_rpc.access" && r["level"] == "INFO");
            ensure!(r["status"] == "ok" && r["method"] == "echo_string");
            ensure!(
                r["request_fields"] == serde_json::json!([{"name": "value", "type": "string"}])
            );
            ensure!(r.get("vgi_rs_transport").is_some() == debug, "{r}");
        }
    }
    Ok(())
}
