//! The real `vgi-rpc` binary against our conformance worker and the Python reference
//! worker (vgi-rpc 0.52.2), over exec, unix and tcp: one scenario list, run once per
//! backend, each backend in its own test (one server per test).
//!
//! Needs Python >= 3.13 for the reference worker and pyarrow checks
//! (`scripts/python-venv.sh` creates the venv on first use; set `VGI_VENV` to reuse one).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use assert_cmd::Command as Cli;

#[path = "../../tests/support/bins.rs"]
mod bins;

const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
/// The `vgi-rpc` binary under test.
const VGI_RPC: &str = env!("CARGO_BIN_EXE_vgi-rpc");

/// Our conformance worker, as `cargo test --workspace` built it for this profile.
fn our_worker() -> PathBuf {
    bins::workspace_bin("vgi-rpc-conformance", "vgi-rpc-conformance-worker")
}

/// The reference venv (`scripts/python-venv.sh`).
fn venv() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        let output = Command::new("bash")
            .arg(Path::new(WORKSPACE).join("scripts/python-venv.sh"))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "cannot create the reference venv (needs Python >= 3.13; set VGI_PYTHON): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8(output.stdout).unwrap();
        PathBuf::from(stdout.lines().last().unwrap().trim())
    })
}

#[derive(Clone, Copy, PartialEq)]
enum Impl {
    Ours,
    Python,
}

/// The worker command line (the reference hosts reflection only with `--describe`).
fn worker_argv(which: Impl) -> Vec<String> {
    match which {
        Impl::Ours => vec![our_worker().display().to_string()],
        Impl::Python => vec![
            venv().join("bin/vgi-rpc-conformance").display().to_string(),
            "--describe".to_owned(),
        ],
    }
}

/// A socket server for the duration of a test, killed on drop.
struct Server {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(which: Impl, transport: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let argv = worker_argv(which);
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        match transport {
            "unix" => cmd.arg("--unix").arg(dir.path().join("w.sock")),
            _ => cmd.args(["--tcp", "127.0.0.1:0"]),
        };
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = if let Some(path) = line.trim().strip_prefix("UNIX:") {
            format!("unix:{path}")
        } else if let Some(hostport) = line.trim().strip_prefix("TCP:") {
            format!("tcp://{hostport}")
        } else {
            panic!("unexpected worker banner {line:?}");
        };
        Server {
            child,
            address,
            _dir: dir,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn vgi_rpc() -> Cli {
    Cli::new(VGI_RPC)
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(address: &str, args: &[&str], stdin: Option<&str>) -> Run {
    let mut cmd = vgi_rpc();
    cmd.arg(args[0]).arg(address).args(&args[1..]);
    cmd.timeout(std::time::Duration::from_secs(60));
    if let Some(input) = stdin {
        cmd.write_stdin(input);
    }
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok(address: &str, args: &[&str], stdin: Option<&str>) -> String {
    let r = run(address, args, stdin);
    assert_eq!(r.code, 0, "{args:?} failed: {}", r.stderr);
    r.stdout
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every scenario, against one worker at `address`.
fn scenarios(which: Impl, address: &str) {
    // describe: all 90 methods of the application protocol, its hash, kinds.
    let described: serde_json::Value =
        serde_json::from_str(&ok(address, &["describe", "--format", "json"], None)).unwrap();
    let conformance = described["protocols"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["protocol"] == "ConformanceService")
        .expect("ConformanceService described");
    let methods = conformance["methods"].as_array().unwrap();
    assert_eq!(methods.len(), 90);
    assert_eq!(
        conformance["hash"],
        "05479410c96f34410a2b10a4f6a49d59dcfd9d6d1d45ce9a9807d060a3bd6014"
    );
    let kind = |name: &str| {
        methods.iter().find(|m| m["name"] == name).unwrap()["kind"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(kind("echo_string"), "unary");
    assert_eq!(kind("produce_n"), "producer");
    assert_eq!(kind("exchange_scale"), "exchange");
    let text = ok(address, &["describe"], None);
    assert!(text.contains("produce_n(count: int64)"), "{text}");

    // unary
    assert_eq!(
        ok(address, &["call", "echo_string", "value=hi"], None),
        "hi\n"
    );
    assert_eq!(
        ok(address, &["call", "add_floats", "a=1.5", "b=2"], None),
        "3.5\n"
    );

    // server logs: on stderr with their level; --quiet hides them.
    let r = run(
        address,
        &["call", "echo_with_all_log_levels", "value=v"],
        None,
    );
    assert_eq!((r.code, r.stdout.as_str()), (0, "v\n"), "{}", r.stderr);
    for line in ["[INFO] info: v", "[WARN] warn: v", "[ERROR] error: v"] {
        assert!(r.stderr.contains(line), "{line} missing from {}", r.stderr);
    }
    let r = run(
        address,
        &["call", "echo_with_all_log_levels", "value=v", "-q"],
        None,
    );
    assert!(!r.stderr.contains("[INFO]"), "{}", r.stderr);

    // producer: three rows, as JSON lines, CSV, and cut short by --limit.
    let rows = json_lines(&ok(
        address,
        &["call", "produce_n", "count=3", "--format", "json"],
        None,
    ));
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[2]["index"], 2);
    let csv = ok(
        address,
        &["call", "produce_n", "count=3", "--format", "csv"],
        None,
    );
    assert_eq!(csv.lines().count(), 4, "{csv}");
    let limited = json_lines(&ok(
        address,
        &[
            "call",
            "produce_n",
            "count=50",
            "--limit",
            "4",
            "-f",
            "json",
        ],
        None,
    ));
    assert_eq!(limited.len(), 4);

    // defaults: ours reports them; the reference's description carries none.
    let expected = "required=7, optional_str=default, optional_int=42\n";
    match which {
        Impl::Ours => assert_eq!(
            ok(address, &["call", "with_defaults", "required=7"], None),
            expected
        ),
        Impl::Python => {
            let r = run(address, &["call", "with_defaults", "required=7"], None);
            assert_eq!(r.code, 2, "{}", r.stderr);
            assert!(r.stderr.contains("`optional_str` (string)"), "{}", r.stderr);
            let all = [
                "call",
                "with_defaults",
                "required=7",
                "optional_str=default",
                "optional_int=42",
            ];
            assert_eq!(ok(address, &all, None), expected);
        }
    }

    // remote error: exit 1, error type and code on stderr.
    let r = run(address, &["call", "raise_value_error", "message=x"], None);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("ValueError [UNKNOWN]: x"), "{}", r.stderr);

    // mistyped argument: usage error naming the parameter and its type.
    let r = run(address, &["call", "produce_n", "count=abc"], None);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("`count`") && r.stderr.contains("int64"),
        "{}",
        r.stderr
    );

    // exchange driven by JSON lines on stdin.
    let out = json_lines(&ok(
        address,
        &["call", "exchange_scale", "factor=2", "--format", "json"],
        Some("{\"value\": 1.5}\n\n{\"value\": -4.0}\n"),
    ));
    assert_eq!(
        out,
        [
            serde_json::json!({"value": 3.0}),
            serde_json::json!({"value": -8.0})
        ]
    );

    // exchange driven by an Arrow IPC file: two batches in, two out.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.arrows");
    write_values(&input, &[&[1.0, 2.0], &[0.5]]);
    let out = json_lines(&ok(
        address,
        &[
            "call",
            "exchange_scale",
            "factor=10",
            "--input",
            input.to_str().unwrap(),
            "-f",
            "json",
        ],
        None,
    ));
    let values: Vec<f64> = out.iter().map(|r| r["value"].as_f64().unwrap()).collect();
    assert_eq!(values, [10.0, 20.0, 5.0]);

    // --output x.arrows: pyarrow reads back the rows the JSON output shows.
    let file = dir.path().join("out.arrows");
    let call = [
        "call",
        "produce_large_batches",
        "rows_per_batch=500",
        "batch_count=3",
    ];
    let mut with_output = call.to_vec();
    with_output.extend(["--output", file.to_str().unwrap()]);
    ok(address, &with_output, None);
    let mut as_json = call.to_vec();
    as_json.extend(["--format", "json"]);
    let printed = json_lines(&ok(address, &as_json, None));
    assert_eq!(printed.len(), 1500);
    let script = "import json, sys, pyarrow.ipc as ipc\n\
                  t = ipc.open_stream(sys.argv[1]).read_all()\n\
                  print(json.dumps(t.to_pylist()))";
    let py = Command::new(venv().join("bin/python"))
        .args(["-c", script])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let read_back: Vec<serde_json::Value> = serde_json::from_slice(&py.stdout).unwrap();
    assert_eq!(read_back, printed);
}

/// An Arrow IPC stream file of `value: float64` batches.
fn write_values(path: &Path, batches: &[&[f64]]) {
    use std::sync::Arc;
    let schema = Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new(
        "value",
        arrow_schema::DataType::Float64,
        false,
    )]));
    let file = std::fs::File::create(path).unwrap();
    let mut writer = arrow_ipc::writer::StreamWriter::try_new(file, &schema).unwrap();
    for values in batches {
        let column = Arc::new(arrow_array::Float64Array::from(values.to_vec()));
        let batch = arrow_array::RecordBatch::try_new(schema.clone(), vec![column]).unwrap();
        writer.write(&batch).unwrap();
    }
    writer.finish().unwrap();
}

#[test]
fn a_closed_stdout_stops_an_endless_producer_quietly() {
    let mut child = Command::new(VGI_RPC)
        .args([
            "call",
            &exec_address(Impl::Ours),
            "cancellable_producer",
            "-f",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains("\"index\":0"), "{first}");
    // The reader dropped stdout: the next write fails and the CLI ends by itself.
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

fn exec_address(which: Impl) -> String {
    format!("exec:{}", worker_argv(which).join(" "))
}

#[test]
fn ours_over_exec() {
    scenarios(Impl::Ours, &exec_address(Impl::Ours));
}

#[test]
fn ours_over_unix() {
    let server = Server::start(Impl::Ours, "unix");
    scenarios(Impl::Ours, &server.address);
}

#[test]
fn ours_over_tcp() {
    let server = Server::start(Impl::Ours, "tcp");
    scenarios(Impl::Ours, &server.address);
}

#[test]
fn python_over_exec() {
    scenarios(Impl::Python, &exec_address(Impl::Python));
}

#[test]
fn python_over_unix() {
    let server = Server::start(Impl::Python, "unix");
    scenarios(Impl::Python, &server.address);
}

#[test]
fn python_over_tcp() {
    let server = Server::start(Impl::Python, "tcp");
    scenarios(Impl::Python, &server.address);
}

#[test]
fn usage_and_transport_failures_have_their_own_exit_codes() {
    let r = run("tcp://127.0.0.1:1", &["describe"], None);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let r = run("nonsense:x", &["describe"], None);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let address = exec_address(Impl::Ours);
    let r = run(&address, &["call", "no_such_method"], None);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("unknown method"), "{}", r.stderr);
}

#[test]
fn help_shows_examples() {
    for args in [
        &["--help"][..],
        &["describe", "--help"],
        &["call", "--help"],
    ] {
        let out = vgi_rpc().args(args).output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Examples:"), "{args:?}: {text}");
        assert!(text.contains("vgi-rpc call") || text.contains("vgi-rpc describe"));
    }
}

#[test]
fn verbose_logs_the_wire_and_validation_levels_parse() {
    let address = exec_address(Impl::Ours);
    let r = run(&address, &["call", "-v", "echo_string", "value=hi"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.trim(), "hi");
    let wire: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("vgi_rpc::wire") && l.contains("method=echo_string"))
        .collect();
    assert_eq!(wire.len(), 2, "request out, result in: {}", r.stderr);
    assert!(
        wire.iter()
            .any(|l| l.contains("dir=\"out\"") && l.contains("vgi_rpc.method"))
    );
    assert!(
        !r.stderr.contains("value=hi"),
        "payload values stay out of the log"
    );
    // Quiet without -v.
    let r = run(&address, &["call", "echo_string", "value=hi"], None);
    assert!(!r.stderr.contains("vgi_rpc::wire"), "{}", r.stderr);
    // A cheaper level on an exec: worker still answers correctly.
    let r = run(
        &address,
        &["call", "--validation", "none", "produce_n", "count=2"],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(
        &address,
        &["call", "--validation", "partial", "echo_string", "value=x"],
        None,
    );
    assert_eq!(r.code, 2, "a usage error: {}", r.stderr);
}
