//! The vgi-rpc transport benchmark harness, shared by the criterion benches
//! (`benches/transports.rs`) and the `vgi-rpc-bench` summary command.
//!
//! Every figure is measured next to a physical baseline of the same transport (raw 1-byte
//! ping-pong, raw byte throughput, memcpy), so it reads as a fraction of the limit, and
//! every figure carries its *placement* (client and worker on one core, or on two): on a
//! small machine waking the other core costs tens of microseconds, which dwarfs the
//! framework's own cost, so only figures of the same placement compare.
//!
//! Workers are separate processes started outside the timed loops: this binary's
//! `worker` subcommand (hosting the conformance services plus [`service::BenchService`]),
//! its `raw-server` subcommand (the baselines), or the Python reference worker. All three
//! speak the same command line (`--pipe | --unix PATH | --tcp HOST:PORT`), so a transport
//! is one entry in [`transport::TRANSPORTS`]; shared memory (`shm`) is the pipe's entry
//! plus a segment its clients create ([`transport::Endpoint::connect`]).

pub mod bulk;
pub mod external;
pub mod http;
pub mod measure;
pub mod otel;
pub mod placement;
pub mod raw;
pub mod report;
pub mod scenario;
pub mod service;
pub mod transport;
pub mod worker;
