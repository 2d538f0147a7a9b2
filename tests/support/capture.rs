//! A `tracing` subscriber for tests that records every event as (target, level, fields)
//! and every span as (name, fields, including those recorded after it opened).

#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata as TracingMetadata, Subscriber};

/// Every event as (target, level, rendered fields), in order, and every span opened.
#[derive(Default, Clone)]
pub struct Capture(pub Arc<Mutex<Vec<(String, Level, String)>>>, Arc<Spans>);

#[derive(Default)]
pub struct Spans {
    next: AtomicU64,
    opened: Mutex<Vec<(String, String)>>,
}

impl Capture {
    /// `(span name, rendered fields)` of every span opened so far.
    pub fn spans(&self) -> Vec<(String, String)> {
        self.1.opened.lock().unwrap().clone()
    }
}

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?};", field.name(), value));
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &TracingMetadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attributes: &Attributes<'_>) -> Id {
        let mut fields = Fields(String::new());
        attributes.record(&mut fields);
        let name = attributes.metadata().name().to_owned();
        self.1.opened.lock().unwrap().push((name, fields.0));
        Id::from_u64(self.1.next.fetch_add(1, Ordering::Relaxed) + 1)
    }
    fn record(&self, id: &Id, values: &Record<'_>) {
        // Fields recorded after the span opened are appended to its rendering.
        let mut fields = Fields(String::new());
        values.record(&mut fields);
        let index = usize::try_from(id.into_u64() - 1).unwrap();
        if let Some(span) = self.1.opened.lock().unwrap().get_mut(index) {
            span.1.push_str(&fields.0);
        }
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        let meta = event.metadata();
        self.0
            .lock()
            .unwrap()
            .push((meta.target().to_owned(), *meta.level(), fields.0));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}
