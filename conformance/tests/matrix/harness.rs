//! What every scenario stands on: the workers by name, a [`Backend`] (one worker serving
//! one transport), the time bound around each scenario, and small batch helpers.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, OnceLock, mpsc};
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{ArrayRef, Int64Array, RecordBatch, RecordBatchOptions};
use arrow_schema::Schema;
use vgi_rpc::client::{CallOptions, Client, ConnectOptions, Target};
use vgi_rpc::transport::shm::segment_of;
use vgi_rpc_conformance::ConformanceClient;
use vgi_rpc_conformance::matrix::{self, Endpoint, Transport, WorkerProgram};

/// How long one scenario may take before it counts as hung.
const SCENARIO_LIMIT: Duration = Duration::from_secs(60);

/// One worker serving one transport, started for one scenario.
pub(crate) struct Backend {
    /// The transport's row in the table.
    pub(crate) transport: &'static Transport,
    /// The worker (for `exec:`, the command each client spawns).
    pub(crate) endpoint: Endpoint,
}

impl Backend {
    /// A new client of the worker (for `exec:`, a new worker process).
    pub(crate) fn connect(&self) -> Client {
        self.connect_with(ConnectOptions::default())
    }

    /// A new client with `options` (plus the transport's shared-memory segment, if it
    /// has one).
    pub(crate) fn connect_with(&self, options: ConnectOptions) -> Client {
        self.endpoint
            .connect_with(options)
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.endpoint.address()))
    }

    /// A new typed client.
    pub(crate) fn typed(&self) -> ConformanceClient {
        ConformanceClient::from_client(self.connect())
    }

    /// The process serving `client`: its own `exec:` worker, or the socket worker.
    pub(crate) fn worker_pid(&self, client: &Client) -> u32 {
        client
            .worker_pid()
            .or(self.endpoint.pid())
            .expect("a worker process")
    }
}

/// Runs `scenario` against `worker` serving `transport`, bounded in time.
pub(crate) fn run(worker: &str, transport: &str, scenario: fn(&mut Backend)) {
    let transport = table_row(transport);
    let program = program(worker);
    bounded(move || {
        let endpoint = Endpoint::start(&program, transport).unwrap();
        scenario(&mut Backend {
            transport,
            endpoint,
        });
    });
}

/// Runs a fake-peer `scenario` over `transport`, bounded in time.
pub(crate) fn run_fake(_fake: &str, transport: &str, scenario: fn(&'static Transport)) {
    let transport = table_row(transport);
    bounded(move || scenario(transport));
}

fn table_row(name: &str) -> &'static Transport {
    matrix::transport(name).unwrap_or_else(|| panic!("no transport {name:?} in the table"))
}

/// The worker programs the matrix names.
fn program(name: &str) -> WorkerProgram {
    match name {
        "ours" => WorkerProgram::new(
            "ours",
            vec![env!("CARGO_BIN_EXE_vgi-rpc-conformance-worker").into()],
        ),
        "python" => WorkerProgram::python_reference(&python_venv()),
        "python_client_worker" => WorkerProgram::python_client_worker(&python_venv()),
        other => panic!("no worker program {other:?}"),
    }
}

/// The reference venv, created on first use.
fn python_venv() -> PathBuf {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| matrix::ensure_python_venv().unwrap())
        .clone()
}

/// Runs `body` on its own thread; a panic there fails the test, and so does taking
/// longer than [`SCENARIO_LIMIT`] (the hung thread is left behind).
fn bounded(body: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let name = std::thread::current()
        .name()
        .unwrap_or("scenario")
        .to_owned();
    let thread = std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            body();
            let _ = done.send(());
        })
        .unwrap();
    match finished.recv_timeout(SCENARIO_LIMIT) {
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("the scenario hung: still running after {SCENARIO_LIMIT:?}")
        }
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = thread.join() {
                std::panic::resume_unwind(panic);
            }
        }
    }
}

/// `ConformanceService` 2.0.0.
pub(crate) fn primary() -> Target {
    Target::new("ConformanceService", Some("2.0.0"))
}

/// `conformance.Secondary.v1` (no version).
pub(crate) fn secondary() -> Target {
    Target::new("conformance.Secondary.v1", None)
}

/// A one-row batch from named columns.
pub(crate) fn row(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter(columns).unwrap()
}

/// The parameters batch of a method without parameters.
pub(crate) fn no_params() -> RecordBatch {
    let options = RecordBatchOptions::new().with_row_count(Some(1));
    RecordBatch::try_new_with_options(Arc::new(Schema::empty()), vec![], &options).unwrap()
}

/// The parameters of `produce_n(count)`.
pub(crate) fn count(count: i64) -> RecordBatch {
    row(vec![("count", Arc::new(Int64Array::from(vec![count])))])
}

pub(crate) fn string_value(batch: &RecordBatch) -> String {
    batch.column(0).as_string::<i32>().value(0).to_owned()
}

pub(crate) fn i64_column(batch: &RecordBatch, name: &str) -> Vec<i64> {
    let column = batch.column_by_name(name).unwrap();
    column.as_primitive::<Int64Type>().values().to_vec()
}

pub(crate) fn f64_column(batch: &RecordBatch, name: &str) -> Vec<f64> {
    let column = batch.column_by_name(name).unwrap();
    column.as_primitive::<Float64Type>().values().to_vec()
}

/// `void_noop`.
pub(crate) fn noop(client: &mut Client, options: &CallOptions) -> vgi_rpc::Result<()> {
    client
        .call(&primary(), "void_noop", &no_params(), options)
        .map(|_| ())
}

/// `echo_string(value)`, checked.
pub(crate) fn echo(client: &mut Client, value: &str) {
    let params = row(vec![(
        "value",
        Arc::new(arrow_array::StringArray::from(vec![value])),
    )]);
    let answer = client
        .call(&primary(), "echo_string", &params, &CallOptions::default())
        .unwrap();
    assert_eq!(string_value(answer.batch.as_ref().unwrap()), value);
}

/// Over a transport with shared memory: the worker accepted the segment, and no region
/// is left allocated in it (its allocation table is empty). Nothing to check otherwise.
pub(crate) fn assert_segment_clean(client: &Client, transport: &Transport) {
    if transport.shm.is_none() {
        return;
    }
    let side = client
        .side_channel()
        .expect("the worker declined the shared-memory segment");
    let segment = segment_of(&**side).expect("a shared-memory side channel");
    assert_eq!(segment.allocations().unwrap(), [], "regions left allocated");
}

/// Whether a process with this pid still exists (a zombie counts: it was not reaped).
pub(crate) fn process_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Waits up to 5 s for `pid` to be gone (reaped).
pub(crate) fn wait_gone(pid: u32) -> bool {
    let start = Instant::now();
    while process_exists(pid) {
        if start.elapsed() > Duration::from_secs(5) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// `kill -9 pid`.
pub(crate) fn kill_9(pid: u32) {
    let status = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -9 {pid}");
}
