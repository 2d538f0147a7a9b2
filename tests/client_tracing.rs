//! Server logs reach `tracing` on the client (target `vgi_rpc::remote`) with their level,
//! text and extra fields, without any log handler installed.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::thread;

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use tracing::Level;
use vgi_rpc::client::{CallOptions, Client, ConnectOptions, Link, Target};
use vgi_rpc::prelude::*;
use vgi_rpc::server::serve_connection;

#[path = "support/capture.rs"]
mod capture;
use capture::Capture;

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
