//! OpenTelemetry for calls (feature `otel`): server spans and metrics with the reference
//! implementation's names, client spans and metrics, and W3C trace context carried in
//! request metadata.
//!
//! Operators of data services run OpenTelemetry, and a trace that stops at a vgi-rpc hop
//! is useless to them. The reference (`vgi_rpc.otel`) instruments its server; this module
//! makes the same spans and metrics — span `vgi_rpc/<method>` of kind SERVER, the
//! `rpc.system` / `rpc.service` / `rpc.method` / `rpc.vgi_rpc.*` attributes, the
//! `rpc.server.requests` counter and `rpc.server.duration` histogram — so dashboards
//! built for one work for the other, and adds the client side the reference lacks
//! (`rpc.client.requests`, `rpc.client.duration`, a CLIENT span whose context travels
//! in the request's `traceparent` / `tracestate` metadata).
//!
//! Both halves sit on the engines' seams and nothing else: [`ServerTelemetry`] is a
//! [`CallHook`](crate::server::CallHook), [`ClientTelemetry`] a
//! [`CallObserver`](crate::client::CallObserver). They use the `opentelemetry` API
//! crate's global providers unless given a tracer and meter, so the application decides
//! where telemetry goes; [`otlp`] (feature `otel-otlp`) is a ready OTLP/HTTP set-up for
//! binaries, whose own telemetry hands finished spans straight to its exporter
//! (`span_out`, `export`).
//!
//! A server span is built from the call's record (after its last response byte), with
//! the call's real start and end times, so a stream — however long — is one span on
//! byte-stream transports. The hook only buffers the record: spans and metric points are
//! built by a recorder thread in batches (`deferred`), so that the call path
//! itself pays about a tenth of a microsecond for being observed. [`flush_pending`] (called
//! by `otlp::OtlpGuard` before it flushes) hands the buffered ones over at once.
//! Over HTTP every request (a stream's start, each exchange turn) is its own span, as in
//! the reference, each parented on the trace context that request carried.

mod client;
mod context;
mod deferred;
#[cfg(feature = "otel-otlp")]
mod export;
mod finished;
mod instruments;
mod names;
#[cfg(feature = "otel-otlp")]
pub mod otlp;
mod server;
mod server_record;
mod span_out;
mod spin;

pub use client::ClientTelemetry;
pub use context::{format_traceparent, parse_traceparent};
pub use deferred::flush_all as flush_pending;
pub use server::{ServerTelemetry, ServerTelemetryConfig};

/// The instrumentation scope name, as the reference's (`get_tracer("vgi_rpc", "0.1.0")`).
pub const SCOPE_NAME: &str = "vgi_rpc";
/// The instrumentation scope version, as the reference's.
pub const SCOPE_VERSION: &str = "0.1.0";

/// The tracer and meter scope both halves use.
fn scope() -> opentelemetry::InstrumentationScope {
    opentelemetry::InstrumentationScope::builder(SCOPE_NAME)
        .with_version(SCOPE_VERSION)
        .build()
}
