//! Server logs reach `tracing` on the client (target `vgi_rpc::remote`) with their level,
//! text and extra fields, without any log handler installed.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::thread;

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata as TracingMetadata, Subscriber};
use vgi_rpc::client::{CallOptions, Client, ConnectOptions, Link, Target};
use vgi_rpc::prelude::*;
use vgi_rpc::server::serve_connection;

#[vgi_rpc::service(protocol = "Chatty", version = "1.0.0")]
pub trait Chatty: Send + Sync + 'static {
    /// Logs a warning with an extra field, then echoes.
    fn shout(&self, ctx: &CallContext, text: String) -> Result<String>;
}

struct ChattyImpl;

impl Chatty for ChattyImpl {
    fn shout(&self, ctx: &CallContext, text: String) -> Result<String> {
        ctx.log_with_extra(
            LogLevel::Warn,
            format!("shouting {text}"),
            serde_json::json!({"volume": 11})
                .as_object()
                .unwrap()
                .clone(),
        );
        Ok(text.to_uppercase())
    }
}

/// Records every event as (target, level, rendered fields).
#[derive(Default, Clone)]
struct Capture(Arc<Mutex<Vec<(String, Level, String)>>>);

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
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
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

#[test]
fn server_logs_are_forwarded_to_tracing() {
    let (client_end, server_end) = UnixStream::pair().unwrap();
    let server = Server::builder()
        .service(ChattyServer::new(ChattyImpl))
        .build()
        .unwrap();
    let serving = thread::spawn(move || {
        serve_connection(&server, server_end.try_clone().unwrap(), server_end).unwrap();
    });
    let capture = Capture::default();
    let answer = tracing::subscriber::with_default(capture.clone(), || {
        let link = Link::new(client_end.try_clone().unwrap(), client_end);
        let mut conn = Client::from_link(link, ConnectOptions::default());
        let params = RecordBatch::try_from_iter([(
            "text",
            Arc::new(StringArray::from(vec!["hi"])) as ArrayRef,
        )])
        .unwrap();
        let result = conn
            .call(
                &Target::new("Chatty", Some("1.0.0")),
                "shout",
                &params,
                &CallOptions::default(),
            )
            .unwrap();
        result.batch.unwrap()
    });
    serving.join().unwrap();
    assert_eq!(answer.num_rows(), 1);
    let events = capture.0.lock().unwrap();
    let remote: Vec<_> = events
        .iter()
        .filter(|(target, _, _)| target == "vgi_rpc::remote")
        .collect();
    assert_eq!(remote.len(), 1, "{events:?}");
    let (_, level, fields) = remote[0];
    assert_eq!(*level, Level::WARN);
    assert!(fields.contains("shouting hi"), "{fields}");
    assert!(fields.contains(r#"extra={"volume":11}"#), "{fields}");
}
