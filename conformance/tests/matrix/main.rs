//! The test matrix: every client scenario over every transport of the shared table
//! (`vgi_rpc_conformance::matrix::TRANSPORTS`, the bench's table too), against every
//! worker that serves it. One binary, one macro, like ripgrep's integration tests.
//!
//! Test names read `<group>::<scenario>::<worker>::<transport>`, e.g.
//! `failures::worker_killed_mid_stream::python::unix`, so
//! `cargo test -p vgi-rpc-conformance --test matrix -- ::tcp` runs one transport.
//!
//! | group | workers | what |
//! |---|---|---|
//! | [`dynamic`] | ours, python | the dynamic `Client`: unary, streams, logs, remote errors, in-band cancel |
//! | [`typed`] | ours, python | the generated `ConformanceClient` |
//! | [`native`] | python_client_worker | the reference's native-client lane (`ClientConformanceService`) |
//! | [`failures`] | ours, python | deadlines and reconnects, worker death: the local error variants against real workers |
//! | [`peers`] | fake | fake peers that stall, hang up, answer garbage or are not there |
//! | [`bad_input`] | ours | raw bad bytes to the worker: what it answers, and that it keeps serving |
//!
//! The `shm` row is the pipe with a 64 MiB shared-memory segment beside it: clients are
//! opened with the row's segment ([`Endpoint::connect`](vgi_rpc_conformance::matrix::Endpoint::connect)),
//! so every scenario runs with the segment offered and, where batches are large, used
//! (`dynamic::large_payload` checks its answer came through it and left no region
//! allocated). Fake peers meet the offer first (a silent peer blocks it, so the
//! stream-turn cancel interrupts the offer there); raw bad bytes go below the client that
//! would create a segment, so over `shm` they repeat the pipe's checks.
//!
//! Each test starts its own endpoint (a socket worker, or the `exec:` command its client
//! spawns), so scenarios that kill or stall a worker touch nobody else; every scenario is
//! bounded in time, so a hang fails the test instead of the run.
//!
//! The reference workers need the venv of `scripts/python-venv.sh` (Python >= 3.13;
//! `VGI_VENV` reuses one, `VGI_PYTHON` picks the interpreter). Without it the Python
//! tests fail rather than skip.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::result_large_err)]

/// Instantiates scenarios over the matrix. A scenario is a function of the enclosing
/// module; it becomes `mod <scenario> { mod <worker> { #[test] fn <transport>() } }` for
/// every worker of its group and every transport.
///
/// - `conformance: a, b;` runs `fn(&mut Backend)` against ours and the Python reference;
/// - `ours: a, b;` runs `fn(&mut Backend)` against our worker only;
/// - `client_worker: a, b;` runs `fn(&mut Backend)` against the reference's
///   native-client worker;
/// - `fake: a, b;` runs `fn(&'static Transport)` (the scenario starts its own fake peers).
///
/// The transport list below is the one place naming the transports; the test
/// `every_table_transport_is_in_the_matrix` keeps it equal to the table.
macro_rules! matrix {
    (conformance: $($scenario:ident),+ $(,)?) => {
        $( matrix!(@scenario $scenario [ours, python] run); )+
    };
    (ours: $($scenario:ident),+ $(,)?) => {
        $( matrix!(@scenario $scenario [ours] run); )+
    };
    (client_worker: $($scenario:ident),+ $(,)?) => {
        $( matrix!(@scenario $scenario [python_client_worker] run); )+
    };
    (fake: $($scenario:ident),+ $(,)?) => {
        $( matrix!(@scenario $scenario [fake] run_fake); )+
    };
    (@scenario $scenario:ident [$($worker:ident),+] $runner:ident) => {
        mod $scenario {
            $( matrix!(@with_transports @worker $scenario $worker $runner); )+
        }
    };
    (@worker $scenario:ident $worker:ident $runner:ident [$($transport:ident),+]) => {
        mod $worker {
            $(
                #[test]
                fn $transport() {
                    $crate::harness::$runner(
                        stringify!($worker),
                        stringify!($transport),
                        super::super::$scenario,
                    );
                }
            )+
        }
    };
    (@transport_names [$($transport:ident),+]) => {
        [$(stringify!($transport)),+]
    };
    (@with_transports $($rule:tt)+) => {
        matrix! { $($rule)+ [pipe, unix, tcp, shm] }
    };
}

mod bad_input;
mod dynamic;
mod failures;
mod fake;
mod harness;
mod native;
mod peers;
mod typed;

#[test]
fn every_table_transport_is_in_the_matrix() {
    let table: Vec<&str> = vgi_rpc_conformance::matrix::TRANSPORTS
        .iter()
        .map(|t| t.name)
        .collect();
    let tested = matrix!(@with_transports @transport_names);
    assert_eq!(
        table, tested,
        "the transport list of `matrix!` (conformance/tests/matrix/main.rs) must name every \
         row of vgi_rpc_conformance::matrix::TRANSPORTS"
    );
}
