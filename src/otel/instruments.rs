//! The request counter and duration histogram both halves keep, and how a batch of
//! calls reaches them.
//!
//! The recorder threads ([`super::deferred`]) hand calls over in batches, so the counter
//! takes one addition per attribute set and batch instead of one per call: the same sum
//! on the wire, a fraction of the SDK's attribute hashing. Each duration stays its own
//! histogram point.

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter};

/// `rpc.{side}.requests` and `rpc.{side}.duration`.
pub(super) struct CallInstruments {
    requests: Counter<u64>,
    duration: Histogram<f64>,
}

impl CallInstruments {
    /// The instruments of `side` (`server` or `client`); `verb` completes the counter's
    /// description ("Number of RPC requests {verb}").
    pub(super) fn new(meter: &Meter, side: &str, verb: &str) -> Self {
        CallInstruments {
            requests: meter
                .u64_counter(format!("rpc.{side}.requests"))
                .with_unit("{request}")
                .with_description(format!("Number of RPC requests {verb}"))
                .build(),
            duration: meter
                .f64_histogram(format!("rpc.{side}.duration"))
                .with_unit("s")
                .with_description("Duration of RPC requests")
                .build(),
        }
    }

    /// Records a batch of calls, each as its metric attributes and its duration in
    /// seconds.
    pub(super) fn record<A>(&self, calls: impl IntoIterator<Item = (A, f64)>)
    where
        A: AsRef<[KeyValue]> + PartialEq,
    {
        let mut counts: Vec<(A, u64)> = Vec::new();
        for (attributes, seconds) in calls {
            self.duration.record(seconds, attributes.as_ref());
            match counts.iter_mut().find(|(set, _)| *set == attributes) {
                Some((_, n)) => *n += 1,
                None => counts.push((attributes, 1)),
            }
        }
        for (attributes, n) in counts {
            self.requests.add(n, attributes.as_ref());
        }
    }
}
