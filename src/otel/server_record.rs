//! A finished call as the server half keeps it until the recorder thread turns it into
//! the reference's SERVER span and metric points (see [`super::deferred`] for why).
//!
//! [`Pending`] owns only what the export needs: the method's shared names, times,
//! counters, the parent context, and — when present — the caller's identity and the
//! error. A successful anonymous call allocates nothing here.

use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::trace::{Event, SpanContext, SpanKind, Status, TraceContextExt};
use opentelemetry::{Context, KeyValue};

use super::context::parse_traceparent;
use super::instruments::CallInstruments;
use super::names::MethodNames;
use super::span_out::{Finished, SpanOut};
use crate::ErrorCode;
use crate::server::CallStats;

/// What a call's span and points are made of.
pub(super) struct Pending {
    pub(super) names: Arc<MethodNames>,
    pub(super) method_type: &'static str,
    pub(super) started: SystemTime,
    pub(super) finished: SystemTime,
    pub(super) seconds: f64,
    pub(super) parent: Parent,
    pub(super) authenticated: bool,
    /// Principal, domain, claim attributes: `None` for an anonymous caller.
    pub(super) identity: Option<Box<Identity>>,
    pub(super) remote_addr: Option<String>,
    pub(super) user_agent: Option<String>,
    pub(super) failure: Option<Box<Failure>>,
    pub(super) stats: CallStats,
}

/// The span's parent: the context the request carried, or the answering thread's.
pub(super) enum Parent {
    /// A version-00 `traceparent` (always 55 bytes, kept inline: parsing it is left to
    /// the recorder) and any `tracestate`; `current` if it does not parse.
    Header {
        traceparent: [u8; TRACEPARENT_LEN],
        tracestate: Option<String>,
        current: Context,
    },
    Remote(SpanContext),
    Current(Context),
}

pub(super) use crate::wire::keys::TRACEPARENT_LEN;

/// The caller's identity, as span (and, for the domain, metric) attributes.
pub(super) struct Identity {
    pub(super) principal: Option<String>,
    pub(super) domain: Option<String>,
    /// `claim_attributes` the caller's claims have, already as attributes.
    pub(super) claims: Vec<KeyValue>,
}

/// A failed call's error.
pub(super) struct Failure {
    pub(super) error_type: String,
    pub(super) message: String,
    pub(super) traceback: String,
    pub(super) code: ErrorCode,
}

/// Where spans go, the instruments and span settings the recorder thread uses.
pub(super) struct Instruments {
    pub(super) spans: Option<SpanOut>,
    pub(super) metrics: Option<CallInstruments>,
    pub(super) record_exceptions: bool,
    pub(super) custom_attributes: Vec<KeyValue>,
}

impl Instruments {
    /// The calls' spans and metric points (taking the calls out of `batch`).
    pub(super) fn record(&self, batch: &mut Vec<Pending>) {
        if let Some(metrics) = &self.metrics {
            metrics.record(
                batch
                    .iter()
                    .map(|call| (MetricAttributes::of(call), call.seconds)),
            );
        }
        if let Some(spans) = &self.spans {
            spans.record(batch.drain(..).map(|call| self.finished(call)));
        }
    }

    /// The call's span.
    fn finished(&self, call: Pending) -> Finished {
        let names = &call.names;
        let mut attributes = Vec::with_capacity(20 + self.custom_attributes.len());
        attributes.extend([
            KeyValue::new("rpc.system", "vgi_rpc"),
            KeyValue::new("rpc.service", Arc::clone(&names.service)),
            KeyValue::new("rpc.method", Arc::clone(&names.method)),
            KeyValue::new("rpc.vgi_rpc.method_type", call.method_type),
            KeyValue::new("rpc.vgi_rpc.server_id", Arc::clone(&names.server_id)),
        ]);
        let mut claims = Vec::new();
        if let Some(identity) = call.identity {
            let Identity {
                principal,
                domain,
                claims: claim_attributes,
            } = *identity;
            if let Some(principal) = principal {
                attributes.push(KeyValue::new("rpc.vgi_rpc.auth.principal", principal));
            }
            if let Some(domain) = domain {
                attributes.push(KeyValue::new("rpc.vgi_rpc.auth.domain", domain));
            }
            claims = claim_attributes;
        }
        attributes.push(KeyValue::new(
            "rpc.vgi_rpc.auth.authenticated",
            if call.authenticated { "true" } else { "false" },
        ));
        attributes.extend(claims);
        if let Some(addr) = call.remote_addr {
            attributes.push(KeyValue::new("client.address", addr));
        }
        if let Some(user_agent) = call.user_agent {
            attributes.push(KeyValue::new("user_agent.original", user_agent));
        }
        attributes.extend(self.custom_attributes.iter().cloned());
        // Everything is known already: the outcome goes into the builder too, which is
        // cheaper than setting it on the started span.
        let mut events = Vec::new();
        let status = match call.failure {
            Some(failure) => {
                let Failure {
                    error_type,
                    message,
                    traceback,
                    code,
                } = *failure;
                attributes.push(KeyValue::new("rpc.vgi_rpc.error_type", error_type.clone()));
                attributes.push(KeyValue::new("rpc.vgi_rpc.error_code", code.as_str()));
                // OpenTelemetry's gRPC server conventions: only server-fault codes make
                // the span an error; a caller's mistake leaves the status unset.
                let status = if server_fault(code) {
                    Status::error(message.clone())
                } else {
                    Status::Unset
                };
                if self.record_exceptions {
                    events.push(Event::new(
                        "exception",
                        call.finished,
                        vec![
                            KeyValue::new("exception.type", error_type),
                            KeyValue::new("exception.message", message),
                            KeyValue::new("exception.stacktrace", traceback),
                            KeyValue::new("exception.escaped", "False"),
                        ],
                        0,
                    ));
                }
                status
            }
            None => Status::Ok,
        };
        let stats = &call.stats;
        attributes.extend([
            KeyValue::new("rpc.vgi_rpc.input_batches", count(stats.input_batches)),
            KeyValue::new("rpc.vgi_rpc.output_batches", count(stats.output_batches)),
            KeyValue::new("rpc.vgi_rpc.input_rows", count(stats.input_rows)),
            KeyValue::new("rpc.vgi_rpc.output_rows", count(stats.output_rows)),
            KeyValue::new("rpc.vgi_rpc.input_bytes", count(stats.input_bytes)),
            KeyValue::new("rpc.vgi_rpc.output_bytes", count(stats.output_bytes)),
        ]);
        let parent = match call.parent {
            Parent::Header {
                traceparent,
                tracestate,
                current,
            } => std::str::from_utf8(&traceparent)
                .ok()
                .and_then(|tp| parse_traceparent(tp, tracestate.as_deref()))
                .map_or(current, |remote| {
                    Context::new().with_remote_span_context(remote)
                }),
            Parent::Remote(remote) => Context::new().with_remote_span_context(remote),
            Parent::Current(context) => context,
        };
        Finished {
            name: names.span_name.clone(),
            kind: SpanKind::Server,
            parent,
            identity: None,
            start: call.started,
            end: call.finished,
            attributes,
            events,
            status,
        }
    }
}

/// The reference's metric attributes: no principal, claims or address (cardinality).
/// Kept inline (no vector per call): five always, the caller's domain when known.
#[derive(PartialEq)]
struct MetricAttributes {
    set: [KeyValue; 6],
    len: usize,
}

impl MetricAttributes {
    fn of(call: &Pending) -> Self {
        let names = &call.names;
        let status = if call.failure.is_some() {
            "error"
        } else {
            "ok"
        };
        let domain = call.identity.as_ref().and_then(|i| i.domain.as_deref());
        MetricAttributes {
            set: [
                KeyValue::new("rpc.system", "vgi_rpc"),
                KeyValue::new("rpc.service", Arc::clone(&names.service)),
                KeyValue::new("rpc.method", Arc::clone(&names.method)),
                KeyValue::new("rpc.vgi_rpc.method_type", call.method_type),
                KeyValue::new("status", status),
                KeyValue::new("rpc.vgi_rpc.auth.domain", domain.unwrap_or("").to_owned()),
            ],
            len: if domain.is_some() { 6 } else { 5 },
        }
    }
}

impl AsRef<[KeyValue]> for MetricAttributes {
    fn as_ref(&self) -> &[KeyValue] {
        &self.set[..self.len]
    }
}

/// The codes OpenTelemetry's gRPC conventions count as errors on a server span (the
/// reference's `OTEL_SERVER_ERROR_CODES`).
fn server_fault(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::Unknown
            | ErrorCode::DeadlineExceeded
            | ErrorCode::Unimplemented
            | ErrorCode::Internal
            | ErrorCode::Unavailable
            | ErrorCode::DataLoss
    )
}

/// A counter as an OpenTelemetry integer attribute (saturating: counts never get near).
fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
