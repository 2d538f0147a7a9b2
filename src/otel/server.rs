//! The server half: a [`CallHook`] that turns each call's record into the reference's
//! SERVER span and metric points.
//!
//! The span is made from the record after the call (with the call's own start and end
//! times), parented on the `traceparent` the request carried; names, attributes, status
//! rule and metric instruments are those of `vgi_rpc.otel._OtelDispatchHook`. The hook
//! itself only keeps what the span and points need ([`Pending`]); a recorder thread
//! builds them off the call path ([`super::deferred`]).

use opentelemetry::global::{self, BoxedTracer};
use opentelemetry::metrics::{Counter, Meter};
use opentelemetry::{Context, KeyValue};

use super::context::parse_traceparent;
use super::deferred::Deferred;
use super::instruments::CallInstruments;
use super::names::NameCache;
use super::server_record::{Failure, Identity, Instruments, Parent, Pending, TRACEPARENT_LEN};
use super::span_out::SpanOut;
use crate::RpcError;
use crate::server::{AuthContext, AuthFailure, CallHook, CallRecord, TraceContext};

/// What [`ServerTelemetry`] records (the reference's `OtelConfig`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerTelemetryConfig {
    /// Make a span per call. Default true.
    pub tracing: bool,
    /// Count calls and record their durations. Default true.
    pub metrics: bool,
    /// Add an `exception` event to the span of every failed call. Default true.
    pub record_exceptions: bool,
    /// Extra attributes on every span (not on metrics).
    pub custom_attributes: Vec<KeyValue>,
    /// Claims of the caller's [`AuthContext`] put on its spans (never on metrics:
    /// arbitrary cardinality), as `(claim key, attribute name)` pairs — the reference's
    /// `claim_attributes`. Scalar claims only (string, number, boolean).
    pub claim_attributes: Vec<(String, String)>,
}

impl Default for ServerTelemetryConfig {
    fn default() -> Self {
        ServerTelemetryConfig {
            tracing: true,
            metrics: true,
            record_exceptions: true,
            custom_attributes: Vec::new(),
            claim_attributes: Vec::new(),
        }
    }
}

impl ServerTelemetryConfig {
    /// Sets [`ServerTelemetryConfig::tracing`].
    pub fn with_tracing(mut self, on: bool) -> Self {
        self.tracing = on;
        self
    }

    /// Sets [`ServerTelemetryConfig::metrics`].
    pub fn with_metrics(mut self, on: bool) -> Self {
        self.metrics = on;
        self
    }

    /// Sets [`ServerTelemetryConfig::record_exceptions`].
    pub fn with_record_exceptions(mut self, on: bool) -> Self {
        self.record_exceptions = on;
        self
    }

    /// Adds an attribute to every span.
    pub fn with_attribute(mut self, attribute: KeyValue) -> Self {
        self.custom_attributes.push(attribute);
        self
    }

    /// Puts the caller's claim `claim` on its spans as attribute `attribute` (e.g.
    /// `("tenant_id", "rpc.vgi_rpc.auth.claim.tenant_id")`).
    pub fn with_claim_attribute(
        mut self,
        claim: impl Into<String>,
        attribute: impl Into<String>,
    ) -> Self {
        self.claim_attributes.push((claim.into(), attribute.into()));
        self
    }
}

/// Server spans and metrics for every call: attach with
/// [`ServerBuilder::hook`](crate::server::ServerBuilder::hook).
///
/// ```
/// use std::sync::Arc;
/// use vgi_rpc::otel::ServerTelemetry;
///
/// let server = vgi_rpc::Server::builder()
///     .hook(Arc::new(ServerTelemetry::new()))
///     .build()?;
/// # let _ = server;
/// # Ok::<(), vgi_rpc::Error>(())
/// ```
pub struct ServerTelemetry {
    config: ServerTelemetryConfig,
    names: NameCache,
    recorder: Deferred<Pending>,
    /// `rpc.server.auth_failure` (with metrics on): requests the transport's
    /// authentication refused before dispatch. Rare, so counted at once.
    auth_failures: Option<Counter<u64>>,
}

impl std::fmt::Debug for ServerTelemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTelemetry")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Default for ServerTelemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerTelemetry {
    /// Spans and metrics through the global tracer and meter providers (installed by the
    /// application, e.g. with [`otlp::install`](super::otlp::install)), default config.
    pub fn new() -> Self {
        Self::with_config(ServerTelemetryConfig::default())
    }

    /// Through the global providers, with `config`.
    pub fn with_config(config: ServerTelemetryConfig) -> Self {
        let tracer = global::tracer_with_scope(super::scope());
        let meter = global::meter_with_scope(super::scope());
        Self::from_parts(config, tracer, &meter)
    }

    /// Through a given tracer and meter.
    pub fn from_parts(config: ServerTelemetryConfig, tracer: BoxedTracer, meter: &Meter) -> Self {
        Self::with_outputs(config, SpanOut::Tracer(tracer), meter)
    }

    /// Spans to `spans`, metrics through `meter`.
    pub(super) fn with_outputs(
        config: ServerTelemetryConfig,
        spans: SpanOut,
        meter: &Meter,
    ) -> Self {
        let metrics = config
            .metrics
            .then(|| CallInstruments::new(meter, "server", "handled"));
        let auth_failures = config.metrics.then(|| {
            meter
                .u64_counter("rpc.server.auth_failure")
                .with_unit("{failure}")
                .with_description("Number of authentication failures before RPC dispatch")
                .build()
        });
        let instruments = Instruments {
            spans: config.tracing.then_some(spans),
            metrics,
            record_exceptions: config.record_exceptions,
            custom_attributes: config.custom_attributes.clone(),
        };
        let recorder = Deferred::new("vgi-rpc-otel-server", move |batch| {
            instruments.record(batch);
        });
        ServerTelemetry {
            config,
            names: NameCache::default(),
            recorder,
            auth_failures,
        }
    }

    /// Hands the spans and points of every call recorded so far to the providers now
    /// (they get there within a fraction of a second anyway; before shutting down an
    /// application's own providers, call this first — or
    /// [`otel::flush_pending`](super::flush_pending) for every recorder).
    pub fn flush(&self) {
        self.recorder.flush();
    }

    /// The caller's identity attributes, or `None` for an anonymous caller.
    fn identity(&self, auth: &AuthContext) -> Option<Box<Identity>> {
        if anonymous(auth) {
            return None;
        }
        self.identified(auth)
    }

    /// [`ServerTelemetry::identity`] for a caller that names someone. Out of line: most
    /// callers are anonymous, and their calls skip this code.
    #[cold]
    #[inline(never)]
    fn identified(&self, auth: &AuthContext) -> Option<Box<Identity>> {
        let principal = auth.principal.as_deref().filter(|p| !p.is_empty());
        let domain = auth.domain.as_deref().filter(|d| !d.is_empty());
        let claims: Vec<KeyValue> = if self.config.tracing && !auth.claims.is_empty() {
            self.config
                .claim_attributes
                .iter()
                .filter_map(|(claim, attribute)| {
                    claim_value(auth.claims.get(claim)?)
                        .map(|value| KeyValue::new(attribute.clone(), value))
                })
                .collect()
        } else {
            Vec::new()
        };
        if principal.is_none() && domain.is_none() && claims.is_empty() {
            return None;
        }
        Some(Box::new(Identity {
            principal: principal.map(str::to_owned),
            domain: domain.map(str::to_owned),
            claims,
        }))
    }
}

impl CallHook for ServerTelemetry {
    fn on_auth_failure(&self, failure: &AuthFailure<'_>) {
        let Some(counter) = &self.auth_failures else {
            return;
        };
        let mut attributes = Vec::with_capacity(3 + self.config.custom_attributes.len());
        attributes.push(KeyValue::new("rpc.system", "vgi_rpc"));
        attributes.push(KeyValue::new("rpc.service", failure.protocol.to_owned()));
        attributes.extend(self.config.custom_attributes.iter().cloned());
        attributes.push(KeyValue::new("error.type", failure.error_type.to_owned()));
        counter.add(1, &attributes);
    }

    fn on_call(&self, record: &CallRecord<'_>) {
        if !self.config.tracing && !self.config.metrics {
            return;
        }
        let names = self
            .names
            .get(record.protocol, record.method, record.server_id);
        let parent = match record.trace.filter(|_| self.config.tracing) {
            Some(t) if t.traceparent.len() == TRACEPARENT_LEN => {
                let mut traceparent = [0; TRACEPARENT_LEN];
                traceparent.copy_from_slice(t.traceparent.as_bytes());
                Parent::Header {
                    traceparent,
                    tracestate: t.tracestate.map(str::to_owned),
                    current: Context::current(),
                }
            }
            Some(t) => other_parent(t),
            None if self.config.tracing => Parent::Current(Context::current()),
            None => Parent::Current(Context::new()),
        };
        let failure = record.error.map(failure);
        self.recorder.push(Pending {
            names,
            method_type: record.method_type.as_str(),
            started: record
                .finished_at
                .checked_sub(record.duration)
                .unwrap_or(record.finished_at),
            finished: record.finished_at,
            seconds: record.duration.as_secs_f64(),
            parent,
            authenticated: record.peer.auth.authenticated,
            identity: self.identity(&record.peer.auth),
            remote_addr: record
                .peer
                .remote_addr
                .as_deref()
                .filter(|a| self.config.tracing && !a.is_empty())
                .map(str::to_owned),
            user_agent: record
                .peer
                .user_agent
                .clone()
                .filter(|_| self.config.tracing),
            failure,
            stats: record.stats,
        });
    }
}

/// Whether `auth` names nobody: no principal, domain or claims.
fn anonymous(auth: &AuthContext) -> bool {
    auth.principal.as_deref().is_none_or(str::is_empty)
        && auth.domain.as_deref().is_none_or(str::is_empty)
        && auth.claims.is_empty()
}

/// The parent of a call whose `traceparent` is not the version-00 length (parsed now:
/// rare, and out of the call path's code).
#[cold]
#[inline(never)]
fn other_parent(trace: TraceContext<'_>) -> Parent {
    match parse_traceparent(trace.traceparent, trace.tracestate) {
        Some(remote) => Parent::Remote(remote),
        None => Parent::Current(Context::current()),
    }
}

/// A failed call's error, kept for its span (out of the call path's code).
#[cold]
#[inline(never)]
fn failure(error: &RpcError) -> Box<Failure> {
    Box::new(Failure {
        error_type: error.error_type.clone(),
        message: error.message.clone(),
        traceback: error.traceback.clone(),
        code: error.code,
    })
}

/// A claim as an attribute value: scalars as themselves, anything else (objects,
/// arrays, null) left out, as the reference's `_format_claim_value`.
fn claim_value(value: &serde_json::Value) -> Option<opentelemetry::Value> {
    match value {
        serde_json::Value::String(s) => Some(s.clone().into()),
        serde_json::Value::Bool(b) => Some((*b).into()),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Some(i.into()),
            None => n.as_f64().map(Into::into),
        },
        _ => None,
    }
}

#[cfg(all(test, feature = "otel-otlp"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use super::super::deferred::cost_per_call;

    use super::*;
    use crate::server::{CallStats, MethodType, Peer, TraceContext};

    fn record<'a>(peer: &'a Peer, trace: Option<TraceContext<'a>>) -> CallRecord<'a> {
        CallRecord {
            server_id: "abc123",
            protocol: "Bench",
            protocol_hash: "h",
            method: "noop",
            method_type: MethodType::Unary,
            request_id: "r",
            stream_id: None,
            peer,
            request: None,
            stats: CallStats::default(),
            duration: Duration::from_micros(5),
            finished_at: SystemTime::now(),
            error: None,
            cancelled: false,
            http_status: None,
            trace,
        }
    }

    /// A span exporter that counts what reaches it.
    #[derive(Debug, Clone, Default)]
    struct Counting(Arc<std::sync::atomic::AtomicUsize>);

    impl opentelemetry_sdk::trace::SpanExporter for Counting {
        async fn export(
            &self,
            batch: Vec<opentelemetry_sdk::trace::SpanData>,
        ) -> opentelemetry_sdk::error::OTelSdkResult {
            self.0
                .fetch_add(batch.len(), std::sync::atomic::Ordering::SeqCst);
            Ok(())
        }
    }

    /// The recorder hands its buffer over in batches the SDK's batch span processor
    /// absorbs: a burst of calls far beyond its queue (2048) loses no span.
    #[test]
    fn a_burst_of_calls_loses_no_span() {
        use opentelemetry::trace::TracerProvider as _;

        let exported = Counting::default();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_batch_exporter(exported.clone())
            .build();
        let tracer = BoxedTracer::new(Box::new(provider.tracer("burst")));
        let meter = opentelemetry::metrics::MeterProvider::meter(
            &opentelemetry_sdk::metrics::SdkMeterProvider::builder().build(),
            "burst",
        );
        let hook = ServerTelemetry::from_parts(ServerTelemetryConfig::default(), tracer, &meter);
        let peer = Peer::pipe();
        let calls = 20_000;
        for _ in 0..calls {
            hook.on_call(&record(&peer, None));
        }
        hook.flush();
        provider.force_flush().unwrap();
        assert_eq!(exported.0.load(std::sync::atomic::Ordering::SeqCst), calls);
    }

    /// The same calls make the same exported spans straight to the exporter and
    /// through the SDK's tracer: roots, children of a sampled and of an unsampled
    /// remote parent (with `tracestate`), a failed call, an authenticated caller with a
    /// claim attribute, an address and a custom attribute.
    #[test]
    fn spans_straight_to_the_exporter_equal_the_tracers() {
        use opentelemetry::trace::TracerProvider as _;

        use super::super::export::SpanExport;
        use super::super::export::testing::{Collect, fixed_fields};

        let config = ServerTelemetryConfig::default()
            .with_attribute(KeyValue::new("deployment", "test"))
            .with_claim_attribute("tenant", "rpc.vgi_rpc.auth.claim.tenant");
        let meter = opentelemetry::metrics::MeterProvider::meter(
            &opentelemetry_sdk::metrics::SdkMeterProvider::builder().build(),
            "equal",
        );
        let through_tracer = Collect::default();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_simple_exporter(through_tracer.clone())
            .build();
        let tracer = BoxedTracer::new(Box::new(provider.tracer_with_scope(super::super::scope())));
        let direct = Collect::default();
        let export = SpanExport::start(
            direct.clone(),
            &opentelemetry_sdk::Resource::builder_empty().build(),
        );
        let hooks = [
            ServerTelemetry::from_parts(config.clone(), tracer, &meter),
            ServerTelemetry::with_outputs(config, SpanOut::Export(Arc::clone(&export)), &meter),
        ];

        let anonymous = Peer::pipe();
        let mut signed_in = Peer::new(
            crate::server::TransportKind::Http,
            Some("10.0.0.7:5000".into()),
        );
        signed_in.auth.authenticated = true;
        signed_in.auth.principal = Some("alice".into());
        signed_in.auth.domain = Some("jwt".into());
        signed_in
            .auth
            .claims
            .insert("tenant".into(), serde_json::Value::from("acme"));
        signed_in.user_agent = Some("test-agent/1".into());
        let sampled = TraceContext {
            traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            tracestate: Some("congo=t61rcWkgMzE"),
        };
        let unsampled = TraceContext {
            traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
            tracestate: None,
        };
        let failure = crate::RpcError::value_error("boom");
        let calls = |hook: &ServerTelemetry| {
            hook.on_call(&record(&anonymous, None));
            hook.on_call(&record(&anonymous, Some(sampled)));
            hook.on_call(&record(&anonymous, Some(unsampled)));
            let mut failed = record(&signed_in, Some(sampled));
            failed.error = Some(&failure);
            hook.on_call(&failed);
            hook.on_call(&record(&signed_in, None));
            hook.flush();
        };
        for hook in &hooks {
            calls(hook);
        }
        export.flush();
        let strip = |spans: &[opentelemetry_sdk::trace::SpanData]| -> Vec<String> {
            spans
                .iter()
                .map(|s| {
                    // Timestamps differ between the two rounds of calls; compare the rest.
                    let mut s = s.clone();
                    s.start_time = SystemTime::UNIX_EPOCH;
                    s.end_time = SystemTime::UNIX_EPOCH;
                    for e in &mut s.events.events {
                        e.timestamp = SystemTime::UNIX_EPOCH;
                    }
                    fixed_fields(&s)
                })
                .collect()
        };
        for span in direct.0.lock().unwrap().iter() {
            let took = span.end_time.duration_since(span.start_time).unwrap();
            assert_eq!(took, Duration::from_micros(5), "the call's own duration");
        }
        let ours = strip(&direct.0.lock().unwrap());
        let sdk = strip(&through_tracer.0.lock().unwrap());
        assert_eq!(
            ours.len(),
            4,
            "the unsampled child is not exported: {ours:#?}"
        );
        assert_eq!(ours, sdk);
    }

    /// Per-call cost of the hook's parts with SDK providers that export nothing:
    /// `cargo test --release --lib otel::server::tests::cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn cost() {
        let guard = super::super::otlp::install_discarding();
        let peer = Peer::pipe();
        let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let trace = Some(TraceContext {
            traceparent: tp,
            tracestate: None,
        });
        for (label, config) in [
            ("spans+metrics", ServerTelemetryConfig::default()),
            (
                "spans",
                ServerTelemetryConfig::default().with_metrics(false),
            ),
            (
                "metrics",
                ServerTelemetryConfig::default().with_tracing(false),
            ),
        ] {
            let hook = guard.server_telemetry(config);
            for with_parent in [false, true] {
                let r = record(&peer, if with_parent { trace } else { None });
                let (on_path, off_path) = cost_per_call(|| hook.on_call(&r), || hook.flush());
                println!(
                    "{label} parent={with_parent}: {on_path:?} per call on the call path, {off_path:?} of CPU off it"
                );
            }
        }
    }
}
