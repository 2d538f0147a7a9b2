//! The generated `{Trait}Client` against the generated `{Trait}Server`: a service defined
//! here is served by `serve_connection` on a Unix socket in a thread, and every call goes
//! through the typed client (unary values of several types, defaults, Arrow overrides,
//! void, errors with codes, logs, producer and exchange streams with and without headers).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::result_large_err)]

use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arrow_array::{Float64Array, Int64Array, RecordBatch};
use arrow_schema::SchemaRef;
use vgi_rpc::prelude::*;
use vgi_rpc::{ErrorCode, LogRecord, Server};

#[derive(Debug, Clone, PartialEq, ArrowRecord)]
struct Point {
    x: f64,
    y: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, ArrowEnum)]
enum Status {
    #[vgi(rename = "ACTIVE")]
    Active,
    #[vgi(rename = "INACTIVE")]
    Inactive,
}

/// The header of the `*_with_header` streams.
#[derive(Debug, Clone, PartialEq, ArrowRecord)]
struct Info {
    label: String,
    total: i64,
}

#[derive(Debug, ArrowRecord)]
struct Row {
    value: i64,
}

#[derive(Debug, ArrowRecord)]
struct Sample {
    value: f64,
}

/// A service exercising every shape the typed client generates.
#[vgi_rpc::service(protocol = "ClientTest", version = "1.2.0")]
trait ClientTest: Send + Sync + 'static {
    /// Echo an integer.
    fn echo_int(&self, value: i64) -> Result<i64>;
    fn echo_optional(&self, value: Option<String>) -> Result<Option<String>>;
    fn sum(&self, values: Vec<i64>) -> Result<i64>;
    fn repeat(&self, value: String, times: u8) -> Result<Vec<String>>;
    fn mirror(&self, point: Point) -> Result<Point>;
    fn maybe_point(&self, point: Option<Point>) -> Result<Option<Point>>;
    fn flip(&self, status: Status) -> Result<Status>;
    fn narrow(&self, #[vgi(arrow = "int32")] value: i64) -> Result<i64>;
    fn join(
        &self,
        left: String,
        #[vgi(default = "-")] separator: String,
        right: String,
        #[vgi(default = 2)] times: i64,
        #[vgi(default = None)] suffix: Option<String>,
    ) -> Result<String>;
    fn default_status(&self, #[vgi(default = "INACTIVE")] status: Status) -> Result<Status>;
    fn log_and_return(&self, ctx: &CallContext, message: String) -> Result<()>;
    fn fail(&self, message: String) -> Result<i64>;
    fn count(&self, n: i64) -> Result<Producer<Counter>>;
    fn count_with_header(&self, ctx: &CallContext, n: i64) -> Result<Producer<Counter, Info>>;
    fn fail_after(&self, n: i64) -> Result<Producer<Counter>>;
    fn scale(&self, factor: f64) -> Result<Exchange<Scaler>>;
    fn scale_with_header(&self, factor: f64) -> Result<Exchange<Scaler, Info>>;
    /// A method named like a keyword still gets a client method.
    #[vgi(name = "type")]
    fn r#type(&self, r#box: i64, #[vgi(default = 1)] r#in: i64) -> Result<i64>;
}

struct Counter {
    next: i64,
    end: i64,
    fail: bool,
}

impl ProducerState for Counter {
    fn output_schema(&self) -> SchemaRef {
        Row::schema()
    }

    fn produce(&mut self, turn: &mut Turn<'_>) -> Result<()> {
        if self.next >= self.end {
            if self.fail {
                return Err(RpcError::runtime_error("producer gave up")
                    .with_code(ErrorCode::Aborted)
                    .into());
            }
            turn.finish();
            return Ok(());
        }
        turn.emit_rows(vec![Row { value: self.next }])?;
        self.next += 1;
        Ok(())
    }
}

struct Scaler {
    factor: f64,
}

impl ExchangeState for Scaler {
    fn input_schema(&self) -> SchemaRef {
        Sample::schema()
    }

    fn output_schema(&self) -> SchemaRef {
        Sample::schema()
    }

    fn exchange(&mut self, input: RecordBatch, turn: &mut Turn<'_>) -> Result<()> {
        let rows = (0..input.num_rows())
            .map(|row| {
                Sample::from_batch(&input, row).map(|s| Sample {
                    value: s.value * self.factor,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        turn.emit_rows(rows)
    }
}

struct Impl;

impl ClientTest for Impl {
    fn echo_int(&self, value: i64) -> Result<i64> {
        Ok(value)
    }

    fn echo_optional(&self, value: Option<String>) -> Result<Option<String>> {
        Ok(value)
    }

    fn sum(&self, values: Vec<i64>) -> Result<i64> {
        Ok(values.iter().sum())
    }

    fn repeat(&self, value: String, times: u8) -> Result<Vec<String>> {
        Ok(vec![value; usize::from(times)])
    }

    fn mirror(&self, point: Point) -> Result<Point> {
        Ok(Point {
            x: point.y.unwrap_or_default(),
            y: Some(point.x),
        })
    }

    fn maybe_point(&self, point: Option<Point>) -> Result<Option<Point>> {
        Ok(point)
    }

    fn flip(&self, status: Status) -> Result<Status> {
        Ok(match status {
            Status::Active => Status::Inactive,
            Status::Inactive => Status::Active,
        })
    }

    fn narrow(&self, value: i64) -> Result<i64> {
        Ok(value * 2)
    }

    fn join(
        &self,
        left: String,
        separator: String,
        right: String,
        times: i64,
        suffix: Option<String>,
    ) -> Result<String> {
        let pair = format!("{left}{separator}{right}");
        let times = usize::try_from(times).map_err(|_| RpcError::value_error("times < 0"))?;
        Ok(format!(
            "{}{}",
            pair.repeat(times),
            suffix.unwrap_or_default()
        ))
    }

    fn default_status(&self, status: Status) -> Result<Status> {
        Ok(status)
    }

    fn log_and_return(&self, ctx: &CallContext, message: String) -> Result<()> {
        ctx.log(LogLevel::Warn, message);
        Ok(())
    }

    fn fail(&self, message: String) -> Result<i64> {
        Err(RpcError::value_error(message)
            .with_code(ErrorCode::NotFound)
            .with_kind("missing")
            .with_detail(serde_json::json!({"@type": "ClientTest.Missing", "key": "k1"}))
            .into())
    }

    fn count(&self, n: i64) -> Result<Producer<Counter>> {
        Ok(Producer::new(Counter {
            next: 0,
            end: n,
            fail: false,
        }))
    }

    fn count_with_header(&self, ctx: &CallContext, n: i64) -> Result<Producer<Counter, Info>> {
        ctx.log(LogLevel::Info, "opening");
        let info = Info {
            label: "counter".into(),
            total: n,
        };
        let state = Counter {
            next: 0,
            end: n,
            fail: false,
        };
        Ok(Producer::with_header(state, info))
    }

    fn fail_after(&self, n: i64) -> Result<Producer<Counter>> {
        Ok(Producer::new(Counter {
            next: 0,
            end: n,
            fail: true,
        }))
    }

    fn scale(&self, factor: f64) -> Result<Exchange<Scaler>> {
        Ok(Exchange::new(Scaler { factor }))
    }

    fn scale_with_header(&self, factor: f64) -> Result<Exchange<Scaler, Info>> {
        let info = Info {
            label: "scaler".into(),
            total: 0,
        };
        Ok(Exchange::with_header(Scaler { factor }, info))
    }

    fn r#type(&self, r#box: i64, r#in: i64) -> Result<i64> {
        Ok(r#box + r#in)
    }
}

/// Serves one connection on a fresh Unix socket and returns a client connected to it.
fn client() -> ClientTestClient {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let path: PathBuf = std::env::temp_dir().join(format!(
        "vgi-client-test-{}-{}.sock",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let server = Server::builder()
        .service(ClientTestServer::new(Impl))
        .build()
        .unwrap();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let reader = stream.try_clone().unwrap();
        let _ = vgi_rpc::server::serve_connection(&server, reader, stream);
    });
    let client = ClientTestClient::connect(&format!("unix:{}", path.display())).unwrap();
    let _ = std::fs::remove_file(&path);
    client
}

fn samples(values: &[f64]) -> RecordBatch {
    Sample::to_batch(values.iter().map(|&value| Sample { value }).collect()).unwrap()
}

fn sample_values(batch: &RecordBatch) -> Vec<f64> {
    let column = batch.column_by_name("value").unwrap();
    let column = column.as_any().downcast_ref::<Float64Array>().unwrap();
    column.values().to_vec()
}

fn row_values(batches: &[RecordBatch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|batch| {
            let column = batch.column_by_name("value").unwrap();
            let column = column.as_any().downcast_ref::<Int64Array>().unwrap();
            column.values().to_vec()
        })
        .collect()
}

#[test]
fn unary_calls_round_trip_rust_types() {
    let mut c = client();
    assert_eq!(c.echo_int(-42).unwrap(), -42);
    assert_eq!(c.echo_optional(None).unwrap(), None);
    assert_eq!(
        c.echo_optional(Some("x".into())).unwrap(),
        Some("x".to_owned())
    );
    assert_eq!(c.sum(vec![1, 2, 3]).unwrap(), 6);
    assert_eq!(c.sum(vec![]).unwrap(), 0);
    assert_eq!(c.repeat("ab".into(), 3).unwrap(), ["ab", "ab", "ab"]);
    assert_eq!(
        c.mirror(Point { x: 1.5, y: None }).unwrap(),
        Point {
            x: 0.0,
            y: Some(1.5)
        }
    );
    let point = Point {
        x: 2.0,
        y: Some(3.0),
    };
    assert_eq!(c.maybe_point(Some(point.clone())).unwrap(), Some(point));
    assert_eq!(c.maybe_point(None).unwrap(), None);
    assert_eq!(c.flip(Status::Active).unwrap(), Status::Inactive);
    assert_eq!(c.r#type(41, 2).unwrap(), 43);
    assert_eq!(c.type_with_defaults(41).unwrap(), 42);
}

#[test]
fn arrow_overrides_are_sent_as_declared() {
    let mut c = client();
    assert_eq!(c.narrow(21).unwrap(), 42);
    // Too wide for the declared int32: refused locally, and the connection stays usable.
    let err = c.narrow(1 << 40).unwrap_err();
    assert!(matches!(err, vgi_rpc::Error::Type(_)), "{err}");
    assert_eq!(c.narrow(-5).unwrap(), -10);
}

#[test]
fn defaults_fill_omitted_parameters() {
    let mut c = client();
    assert_eq!(
        c.join("a".into(), "+".into(), "b".into(), 1, Some("!".into()))
            .unwrap(),
        "a+b!"
    );
    assert_eq!(
        c.join_with_defaults("a".into(), "b".into()).unwrap(),
        "a-ba-b"
    );
    assert_eq!(c.default_status_with_defaults().unwrap(), Status::Inactive);
    assert_eq!(c.default_status(Status::Active).unwrap(), Status::Active);
}

#[test]
fn remote_errors_carry_code_kind_and_details() {
    let mut c = client();
    let err = c.fail("no such key".into()).unwrap_err();
    let vgi_rpc::Error::Rpc(rpc) = err else {
        panic!("expected a remote error, got {err:?}");
    };
    assert_eq!(rpc.error_type, "ValueError");
    assert_eq!(rpc.message, "no such key");
    assert_eq!(rpc.code, ErrorCode::NotFound);
    assert_eq!(rpc.kind.as_deref(), Some("missing"));
    assert_eq!(
        rpc.details,
        [serde_json::json!({"@type": "ClientTest.Missing", "key": "k1"})]
    );
    assert!(!rpc.traceback.is_empty());
    // The connection survives a remote error.
    assert_eq!(c.echo_int(7).unwrap(), 7);
}

#[test]
fn logs_reach_the_handler() {
    let mut c = client();
    let seen: Arc<Mutex<Vec<(LogLevel, String)>>> = Arc::default();
    let sink = Arc::clone(&seen);
    c.client_mut().set_log_handler(move |record: &LogRecord| {
        sink.lock()
            .unwrap()
            .push((record.level, record.message.clone()));
    });
    c.log_and_return("careful".into()).unwrap();
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        [(LogLevel::Warn, "careful".to_owned())]
    );
    let stream = c.count_with_header(1).unwrap();
    assert_eq!(stream.collect::<Result<Vec<_>>>().unwrap().len(), 1);
    assert!(
        seen.lock()
            .unwrap()
            .contains(&(LogLevel::Info, "opening".to_owned()))
    );
}

#[test]
fn producers_iterate_batches() {
    let mut c = client();
    let stream = c.count(3).unwrap();
    assert_eq!(stream.header(), &());
    assert!(stream.header_batch().is_none());
    let batches = stream.collect::<Result<Vec<_>>>().unwrap();
    assert_eq!(row_values(&batches), [0, 1, 2]);

    let empty = c.count(0).unwrap().collect::<Result<Vec<_>>>().unwrap();
    assert!(empty.is_empty());

    // Stop early: cancel, then the connection serves the next call.
    let mut stream = c.count(1_000_000).unwrap();
    let first = stream.next().unwrap().unwrap();
    assert_eq!(row_values(&[first]), [0]);
    stream.cancel().unwrap();
    assert_eq!(c.echo_int(1).unwrap(), 1);

    // Dropping an unfinished stream closes it.
    let mut stream = c.count(5).unwrap();
    stream.next().unwrap().unwrap();
    drop(stream);
    assert_eq!(c.echo_int(2).unwrap(), 2);
}

#[test]
fn producer_header_is_typed_and_available_before_iterating() {
    let mut c = client();
    let stream = c.count_with_header(2).unwrap();
    assert_eq!(
        stream.header(),
        &Info {
            label: "counter".into(),
            total: 2
        }
    );
    assert!(stream.header_batch().is_some());
    let batches: Vec<RecordBatch> = stream.collect::<Result<_>>().unwrap();
    assert_eq!(row_values(&batches), [0, 1]);
}

#[test]
fn producer_errors_end_the_iteration() {
    let mut c = client();
    let mut stream = c.fail_after(2).unwrap();
    assert!(stream.next().unwrap().is_ok());
    assert!(stream.next().unwrap().is_ok());
    let err = stream.next().unwrap().unwrap_err();
    let vgi_rpc::Error::Rpc(rpc) = err else {
        panic!("expected a remote error, got {err:?}");
    };
    assert_eq!(rpc.code, ErrorCode::Aborted);
    assert_eq!(rpc.message, "producer gave up");
    assert!(stream.next().is_none());
    drop(stream);
    assert_eq!(c.echo_int(3).unwrap(), 3);
}

#[test]
fn exchanges_answer_each_input() {
    let mut c = client();
    let mut session = c.scale(2.0).unwrap();
    assert_eq!(session.header(), &());
    let out = session.exchange(&samples(&[1.0, 2.5])).unwrap();
    assert_eq!(sample_values(&out), [2.0, 5.0]);
    let out = session.exchange(&samples(&[-1.0])).unwrap();
    assert_eq!(sample_values(&out), [-2.0]);
    session.close().unwrap();

    let mut session = c.scale_with_header(3.0).unwrap();
    assert_eq!(session.header().label, "scaler");
    let out = session.exchange(&samples(&[1.0])).unwrap();
    assert_eq!(sample_values(&out), [3.0]);
    session.cancel().unwrap();
    assert_eq!(c.echo_int(4).unwrap(), 4);
}

#[test]
fn options_and_the_inner_client_are_reachable() {
    let c = client();
    let options =
        vgi_rpc::client::CallOptions::default().with_timeout(std::time::Duration::from_secs(5));
    let mut c = c.with_options(options);
    assert_eq!(c.options().timeout, Some(std::time::Duration::from_secs(5)));
    assert_eq!(c.echo_int(9).unwrap(), 9);
    let inner = c.into_client();
    let mut c = ClientTestClient::from_client(inner);
    assert_eq!(c.echo_int(10).unwrap(), 10);
}
