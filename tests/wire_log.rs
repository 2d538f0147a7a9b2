//! Wire debug logging (`vgi_rpc::wire`): one unary call, one producer and one exchange,
//! through the real engines over a socket pair, with the events of both ends captured.
//! Checks the sequence of messages, their fields, the call and turn spans, and that no
//! metadata value or column value ever reaches the log.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::thread;

use arrow_array::{ArrayRef, Float64Array, RecordBatch};
use arrow_schema::SchemaRef;
use tracing::Level;
use vgi_rpc::client::{CallOptions, Client};
use vgi_rpc::prelude::*;
use vgi_rpc::server::{Peer, serve_connection_from};
use vgi_rpc::wire::Metadata;

#[path = "support/capture.rs"]
mod capture;
use capture::Capture;

const SECRET: &str = "s3cr3t-token-value";
const SECRET_ARG: &str = "classified-argument";

#[vgi_rpc::service(protocol = "Wired", version = "1.0.0")]
pub trait Wired: Send + Sync + 'static {
    /// Echoes `text`.
    fn echo(&self, text: String) -> Result<String>;
    /// Two batches of one row.
    fn two(&self) -> Result<Producer<Two>>;
    /// Doubles every input.
    fn double(&self) -> Result<Exchange<Doubler>>;
}

#[derive(Debug, ArrowRecord)]
pub struct Value {
    pub v: f64,
}

pub struct Two(u8);

impl ProducerState for Two {
    fn output_schema(&self) -> SchemaRef {
        Value::schema()
    }
    fn produce(&mut self, turn: &mut Turn<'_>) -> Result<()> {
        if self.0 == 2 {
            turn.finish();
            return Ok(());
        }
        self.0 += 1;
        turn.emit_rows(vec![Value { v: 1.0 }])
    }
}

pub struct Doubler;

impl ExchangeState for Doubler {
    fn input_schema(&self) -> SchemaRef {
        Value::schema()
    }
    fn output_schema(&self) -> SchemaRef {
        Value::schema()
    }
    fn exchange(&mut self, input: RecordBatch, turn: &mut Turn<'_>) -> Result<()> {
        let rows: Vec<Value> = input.rows()?;
        turn.emit_rows(rows.into_iter().map(|r| Value { v: r.v * 2.0 }).collect())
    }
}

struct Impl;

impl Wired for Impl {
    fn echo(&self, text: String) -> Result<String> {
        Ok(text)
    }
    fn two(&self) -> Result<Producer<Two>> {
        Ok(Producer::new(Two(0)))
    }
    fn double(&self) -> Result<Exchange<Doubler>> {
        Ok(Exchange::new(Doubler))
    }
}

/// (dir, kind, rows) of each DEBUG batch event, in order.
fn batches(capture: &Capture) -> Vec<(String, String, String)> {
    let field = |fields: &str, name: &str| {
        let start = fields.find(&format!("{name}="))? + name.len() + 1;
        let end = fields[start..].find(';')? + start;
        Some(fields[start..end].trim_matches('"').to_owned())
    };
    capture
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|(target, level, _)| target == "vgi_rpc::wire" && *level == Level::DEBUG)
        .map(|(_, _, f)| {
            (
                field(f, "dir").unwrap(),
                field(f, "kind").unwrap(),
                field(f, "rows").unwrap(),
            )
        })
        .collect()
}

fn expect(capture: &Capture, expected: &[(&str, &str, &str)]) {
    let got = batches(capture);
    let got: Vec<(&str, &str, &str)> = got
        .iter()
        .map(|(d, k, r)| (d.as_str(), k.as_str(), r.as_str()))
        .collect();
    assert_eq!(got, expected);
    capture.0.lock().unwrap().clear();
}

#[test]
fn unary_producer_and_exchange_on_the_wire() {
    let (client_end, server_end) = UnixStream::pair().unwrap();
    let server = Server::builder()
        .service(WiredServer::new(Impl))
        .build()
        .unwrap();
    let capture = Capture::default();
    let in_server = capture.clone();
    let serving = thread::spawn(move || {
        tracing::subscriber::with_default(in_server, || {
            let reader = server_end.try_clone().unwrap();
            serve_connection_from(&server, Peer::unix(), reader, server_end).unwrap();
        })
    });
    tracing::subscriber::with_default(capture.clone(), || {
        let client = Client::from_io(client_end.try_clone().unwrap(), client_end);
        let mut client = WiredClient::from_client(client);
        let secret = Metadata::new().with("authorization", SECRET);

        // Client then server events interleave in causal order on one socket pair: the
        // request goes out before the server reads it, and so on.
        let options = CallOptions::default().with_metadata(secret);
        assert_eq!(
            client.call_with(options).echo(SECRET_ARG.into()).unwrap(),
            SECRET_ARG
        );
        expect(
            &capture,
            &[
                ("out", "Data", "1"),
                ("in", "Data", "1"),
                ("out", "Data", "1"),
                ("in", "Data", "1"),
            ],
        );

        let batches: Vec<_> = client.two().unwrap().collect();
        assert_eq!(batches.len(), 2);
        let produced = batches_of(&capture);
        // Request (0 rows: no parameters), then per tick: tick out, tick in, batch out,
        // batch in; the last tick finishes the stream.
        assert_eq!(
            produced.first().map(|(d, k, _)| (d.as_str(), k.as_str())),
            Some(("out", "Data"))
        );
        let data_in = produced
            .iter()
            .filter(|(d, k, r)| d == "in" && k == "Data" && r == "1");
        assert_eq!(
            data_in.count(),
            2,
            "two produced batches reached the client: {produced:?}"
        );

        let mut doubler = client.double().unwrap();
        let input: ArrayRef = Arc::new(Float64Array::from(vec![1.5, 2.5]));
        let input = RecordBatch::try_from_iter([("v", input)]).unwrap();
        let out = doubler.exchange(&input).unwrap();
        assert_eq!(out.num_rows(), 2);
        doubler.close().unwrap();
        let exchanged = batches_of(&capture);
        let two_rows: Vec<_> = exchanged
            .iter()
            .filter(|(_, k, r)| k == "Data" && r == "2")
            .collect();
        assert_eq!(
            two_rows.len(),
            4,
            "input out/in, output out/in: {exchanged:?}"
        );
    });
    serving.join().unwrap();

    let spans = capture.spans();
    let names: Vec<&str> = spans.iter().map(|(n, _)| n.as_str()).collect();
    for (name, method) in [
        ("call", "echo"),
        ("serve", "echo"),
        ("call", "two"),
        ("serve", "two"),
        ("call", "double"),
    ] {
        assert!(
            spans
                .iter()
                .any(|(n, f)| n == name && f.contains(&format!("method={method}"))),
            "a {name} span for {method}: {spans:?}"
        );
    }
    assert!(
        names.contains(&"turn"),
        "stream turns have spans: {names:?}"
    );
    for (_, _, fields) in capture.0.lock().unwrap().iter() {
        assert!(
            !fields.contains(SECRET),
            "a metadata value was logged: {fields}"
        );
        assert!(
            !fields.contains(SECRET_ARG),
            "a column value was logged: {fields}"
        );
    }
}

fn batches_of(capture: &Capture) -> Vec<(String, String, String)> {
    let all = batches(capture);
    capture.0.lock().unwrap().clear();
    all
}
