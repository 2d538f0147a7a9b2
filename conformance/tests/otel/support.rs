//! What the OpenTelemetry tests share: the OTLP receiver, the reference scripts, and
//! reading spans and attributes out of a capture.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use vgi_rpc_conformance::announce::spawn_announcing;
use vgi_rpc_conformance::matrix::{ensure_python_venv, python_venv};

pub(crate) const WORKER: &str = env!("CARGO_BIN_EXE_vgi-rpc-conformance-worker");

/// Tests that install this process's global OpenTelemetry providers run one at a time.
pub(crate) static GLOBAL_PROVIDERS: std::sync::Mutex<()> = std::sync::Mutex::new(());
pub(crate) const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/python/otel");

pub(crate) fn python() -> PathBuf {
    python_venv()
        .or_else(|| ensure_python_venv().ok())
        .expect("the reference venv (scripts/python-venv.sh)")
        .join("bin/python")
}

pub(crate) fn script(name: &str) -> String {
    format!("{SCRIPTS}/{name}")
}

pub(crate) fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vgi-otel-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The OTLP receiver: decodes into `capture` (one JSON request per line).
pub(crate) struct Receiver {
    child: Child,
    pub(crate) url: String,
    capture: PathBuf,
}

impl Receiver {
    pub(crate) fn start(dir: &Path) -> Receiver {
        let capture = dir.join("capture.jsonl");
        let (child, port) = spawn_announcing(
            Command::new(python())
                .arg(script("otlp_receiver.py"))
                .arg(&capture),
        )
        .unwrap();
        Receiver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            capture,
        }
    }

    /// The decoded requests, once both signals arrived (or after `timeout`).
    pub(crate) fn requests(&self, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = std::fs::read_to_string(&self.capture).unwrap_or_default();
            let requests: Vec<Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            let has = |p: &str| requests.iter().any(|r| r["path"] == p);
            if (has("/v1/traces") && has("/v1/metrics")) || Instant::now() > deadline {
                return requests;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `otel_summary.py`'s canonical summary, relative to the client's root span.
    pub(crate) fn summary(&self, root_span: &str, root_trace: &str) -> Value {
        self.requests(Duration::from_secs(20));
        let out = Command::new(python())
            .arg(script("otel_summary.py"))
            .args([self.capture.to_str().unwrap(), root_span, root_trace])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `py_otel_client.py` against `worker`; the client root span's ids.
pub(crate) fn reference_client(worker: &[&str], env: &[(&str, &str)]) -> (String, String) {
    let out = Command::new(python())
        .arg(script("py_otel_client.py"))
        .args(worker)
        .envs(env.iter().copied())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "reference client failed");
    let ids: Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        ids["span_id"].as_str().unwrap().to_owned(),
        ids["trace_id"].as_str().unwrap().to_owned(),
    )
}

/// The spans of a capture, flattened: `(scope span record, resource service name)`.
pub(crate) fn spans(requests: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for r in requests.iter().filter(|r| r["path"] == "/v1/traces") {
        for rs in r["body"]["resource_spans"].as_array().unwrap() {
            for ss in rs["scope_spans"].as_array().unwrap() {
                out.extend(ss["spans"].as_array().unwrap().iter().cloned());
            }
        }
    }
    out
}

/// The last export of metric `name` in a capture (cumulative: it holds every point).
pub(crate) fn last_metric<'a>(requests: &'a [Value], name: &str) -> &'a Value {
    requests
        .iter()
        .filter(|r| r["path"] == "/v1/metrics")
        .flat_map(|r| r["body"]["resource_metrics"].as_array().unwrap())
        .flat_map(|rm| rm["scope_metrics"].as_array().unwrap())
        .flat_map(|sm| sm["metrics"].as_array().unwrap())
        .rev()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no {name} exported"))
}

pub(crate) fn attribute<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
    span["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| &a["value"])
}

/// Stops a worker with SIGTERM (so it flushes its telemetry) and checks it exits cleanly.
pub(crate) fn stop_gracefully(worker: &mut Child) {
    let kill = Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert!(worker.wait().unwrap().success());
}

/// The spans of `kind` (`SPAN_KIND_CLIENT`, `SPAN_KIND_SERVER`) among `spans`.
pub(crate) fn of_kind<'a>(spans: &'a [Value], kind: &str) -> Vec<&'a Value> {
    spans.iter().filter(|s| s["kind"] == kind).collect()
}
