//! `#[vgi_rpc::service]` at run time: the generated `ProtocolSpec` (names, kinds, schemas,
//! defaults, docs) and the generated dispatcher answering real requests.

// `vgi_rpc::Error` is currently 152 bytes, which clippy flags on every handler signature.
#![allow(clippy::result_large_err)]

use std::io::Cursor;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use arrow_array::{
    Array, ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use vgi_rpc::server::{MethodKind, Service, serve_connection};
use vgi_rpc::wire::{Metadata, StreamEncoder, decode_stream, keys};
use vgi_rpc::{
    CallContext, Exchange, ExchangeState, LogLevel, Producer, ProducerState, Server, Turn,
};

/// A calculator.
///
/// Second paragraph.
#[vgi_rpc::service(protocol = "Calculator", version = "1.0.0")]
pub(crate) trait Calc: Send + Sync + 'static {
    /// Add two numbers.
    fn add(&self, a: i64, b: i64) -> vgi_rpc::Result<i64>;
    fn void_noop(&self) -> vgi_rpc::Result<()>;
    fn concatenate(
        &self,
        prefix: String,
        suffix: String,
        #[vgi(default = "-")] separator: String,
    ) -> vgi_rpc::Result<String>;
    fn echo_with_info_log(&self, ctx: &CallContext, value: String) -> vgi_rpc::Result<String>;
    fn echo_int32_as(&self, #[vgi(arrow = "int32")] value: i64) -> vgi_rpc::Result<i64>;
    fn produce_n(&self, count: i64) -> vgi_rpc::Result<Producer<CountDown>>;
    fn produce_with_header(&self, count: i64) -> vgi_rpc::Result<Producer<CountDown, Header>>;
    fn exchange_scale(&self, factor: f64) -> vgi_rpc::Result<Exchange<Scale>>;
    #[vgi(name = "wire_name")]
    fn rust_name(&self) -> vgi_rpc::Result<i64>;
    fn r#type(
        &self,
        #[vgi(default = 42)] r#in: i64,
        #[vgi(default = None)] maybe: Option<String>,
        #[vgi(default = -1.5)] ratio: f64,
        #[vgi(default = true)] flag: bool,
    ) -> vgi_rpc::Result<i64>;
}

#[derive(vgi_rpc::ArrowRecord)]
pub(crate) struct Header {
    total: i64,
    description: String,
}

pub(crate) struct CountDown(i64);

impl ProducerState for CountDown {
    fn output_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]))
    }

    fn produce(&mut self, turn: &mut Turn<'_>) -> vgi_rpc::Result<()> {
        if self.0 == 0 {
            turn.finish();
            return Ok(());
        }
        let column: ArrayRef = Arc::new(Int64Array::from(vec![self.0]));
        self.0 -= 1;
        turn.emit(RecordBatch::try_new(self.output_schema(), vec![column])?)
    }
}

pub(crate) struct Scale(f64);

impl ExchangeState for Scale {
    fn input_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("x", DataType::Float64, false)]))
    }

    fn output_schema(&self) -> SchemaRef {
        self.input_schema()
    }

    fn exchange(&mut self, input: RecordBatch, turn: &mut Turn<'_>) -> vgi_rpc::Result<()> {
        let scaled: Float64Array = input
            .column(0)
            .as_any()
            .downcast_ref::<Float64Array>()
            .ok_or_else(|| vgi_rpc::Error::type_error("expected float64"))?
            .iter()
            .map(|x| x.map(|x| x * self.0))
            .collect();
        turn.emit(RecordBatch::try_new(
            self.output_schema(),
            vec![Arc::new(scaled)],
        )?)
    }
}

struct Impl;

impl Calc for Impl {
    fn add(&self, a: i64, b: i64) -> vgi_rpc::Result<i64> {
        Ok(a + b)
    }

    fn void_noop(&self) -> vgi_rpc::Result<()> {
        Ok(())
    }

    fn concatenate(
        &self,
        prefix: String,
        suffix: String,
        separator: String,
    ) -> vgi_rpc::Result<String> {
        Ok(format!("{prefix}{separator}{suffix}"))
    }

    fn echo_with_info_log(&self, ctx: &CallContext, value: String) -> vgi_rpc::Result<String> {
        ctx.log(LogLevel::Info, format!("echo {value}"));
        Ok(value)
    }

    fn echo_int32_as(&self, value: i64) -> vgi_rpc::Result<i64> {
        Ok(value)
    }

    fn produce_n(&self, count: i64) -> vgi_rpc::Result<Producer<CountDown>> {
        Ok(Producer::new(CountDown(count)))
    }

    fn produce_with_header(&self, count: i64) -> vgi_rpc::Result<Producer<CountDown, Header>> {
        let header = Header {
            total: count,
            description: "countdown".into(),
        };
        Ok(Producer::with_header(CountDown(count), header))
    }

    fn exchange_scale(&self, factor: f64) -> vgi_rpc::Result<Exchange<Scale>> {
        Ok(Exchange::new(Scale(factor)))
    }

    fn rust_name(&self) -> vgi_rpc::Result<i64> {
        Ok(7)
    }

    fn r#type(
        &self,
        r#in: i64,
        _maybe: Option<String>,
        _ratio: f64,
        _flag: bool,
    ) -> vgi_rpc::Result<i64> {
        Ok(r#in)
    }
}

fn field(name: &str, data_type: DataType, nullable: bool) -> Field {
    Field::new(name, data_type, nullable)
}

#[test]
fn spec_describes_the_protocol() -> Result<()> {
    let spec = CalcServer::spec();
    assert_eq!(spec.name, "Calculator");
    assert_eq!(spec.version.as_deref(), Some("1.0.0"));
    assert_eq!(spec.doc, "A calculator.\n\nSecond paragraph.");
    let names: Vec<&str> = spec.methods.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "add",
            "void_noop",
            "concatenate",
            "echo_with_info_log",
            "echo_int32_as",
            "produce_n",
            "produce_with_header",
            "exchange_scale",
            "wire_name",
            "type",
        ]
    );
    let method = |name: &str| {
        spec.method_index(name)
            .map(|i| &spec.methods[i])
            .context(name.to_owned())
    };

    let add = method("add")?;
    assert_eq!(add.doc, "Add two numbers.");
    assert_eq!(add.kind, MethodKind::Unary);
    let expected = [
        field("a", DataType::Int64, false),
        field("b", DataType::Int64, false),
    ];
    assert_eq!(
        add.params
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect::<Vec<_>>(),
        expected
    );
    assert_eq!(add.defaults, [None, None]);
    let result = add.result.as_ref().context("add has a result")?;
    assert_eq!(result.fields().len(), 1);
    assert_eq!(result.field(0), &field("result", DataType::Int64, false));
    assert!(add.header.is_none());

    let void = method("void_noop")?;
    assert_eq!(
        (void.kind, void.params.fields().len()),
        (MethodKind::Unary, 0)
    );
    assert!(void.result.is_none() && void.doc.is_empty());

    let concatenate = method("concatenate")?;
    assert_eq!(concatenate.defaults, [None, None, Some("\"-\"".to_owned())]);

    let echo = method("echo_with_info_log")?;
    assert_eq!(
        echo.params.fields().len(),
        1,
        "the context is not a request field"
    );
    assert_eq!(echo.params.field(0), &field("value", DataType::Utf8, false));

    let narrowed = method("echo_int32_as")?;
    assert_eq!(
        narrowed.params.field(0),
        &field("value", DataType::Int32, false)
    );

    let produce = method("produce_n")?;
    assert_eq!(produce.kind, MethodKind::Producer);
    assert!(produce.result.is_none() && produce.header.is_none());

    let with_header = method("produce_with_header")?;
    let header = with_header.header.as_ref().context("header schema")?;
    assert_eq!(header.field(0), &field("total", DataType::Int64, false));
    assert_eq!(
        header.field(1),
        &field("description", DataType::Utf8, false)
    );

    assert_eq!(method("exchange_scale")?.kind, MethodKind::Exchange);

    let raw = method("type")?;
    let params: Vec<&str> = raw
        .params
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(params, ["in", "maybe", "ratio", "flag"]);
    assert!(raw.params.field(1).is_nullable());
    let defaults: Vec<Option<&str>> = raw.defaults.iter().map(Option::as_deref).collect();
    assert_eq!(
        defaults,
        [Some("42"), Some("null"), Some("-1.5"), Some("true")]
    );
    Ok(())
}

#[test]
fn server_shares_one_spec() {
    let server = CalcServer::new(Impl);
    let clone = server.clone();
    assert!(Arc::ptr_eq(Service::spec(&server), Service::spec(&clone)));
    let shared: CalcServer<dyn Calc> = CalcServer::from_arc(Arc::new(Impl) as Arc<dyn Calc>);
    assert_eq!(Service::spec(&shared).methods.len(), 10);
}

/// Sends one request through the server's connection loop and returns the response
/// batches (logs first, then the result).
fn call(method: &str, columns: Vec<(&str, ArrayRef)>) -> Result<Vec<RecordBatch>> {
    let server = Server::builder().service(CalcServer::new(Impl)).build()?;
    let batch = if columns.is_empty() {
        RecordBatch::new_empty(Arc::new(Schema::empty()))
    } else {
        RecordBatch::try_from_iter(columns)?
    };
    let metadata = Metadata::new()
        .with(keys::METHOD, method)
        .with(keys::REQUEST_VERSION, keys::REQUEST_VERSION_VALUE)
        .with(keys::PROTOCOL, "Calculator")
        .with(keys::PROTOCOL_VERSION, "1.0.0");
    let mut request = Vec::new();
    let mut encoder = StreamEncoder::new();
    encoder.schema(&mut request, batch.schema().as_ref());
    encoder.batch(&mut request, &batch, &metadata)?;
    encoder.eos(&mut request);
    let mut response = Vec::new();
    serve_connection(&server, Cursor::new(request), &mut response)?;
    Ok(decode_stream(&response)?.1)
}

/// The single row of the last batch, column 0, as `A`.
fn result<A: Array + Clone + 'static>(batches: &[RecordBatch]) -> Result<A> {
    let Some(last) = batches.last() else {
        bail!("no response batch")
    };
    if last.num_rows() != 1 {
        bail!("expected a 1-row result, got {last:?}");
    }
    last.column(0)
        .as_any()
        .downcast_ref::<A>()
        .cloned()
        .context("result type")
}

#[test]
fn unary_call_returns_one_row() -> Result<()> {
    let a: ArrayRef = Arc::new(Int64Array::from(vec![2]));
    let b: ArrayRef = Arc::new(Int64Array::from(vec![40]));
    let batches = call("add", vec![("a", a), ("b", b)])?;
    assert_eq!(result::<Int64Array>(&batches)?.value(0), 42);
    Ok(())
}

#[test]
fn arguments_arrive_in_declaration_order() -> Result<()> {
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("prefix", Arc::new(StringArray::from(vec!["a"]))),
        ("suffix", Arc::new(StringArray::from(vec!["b"]))),
        ("separator", Arc::new(StringArray::from(vec!["+"]))),
    ];
    let batches = call("concatenate", columns)?;
    assert_eq!(result::<StringArray>(&batches)?.value(0), "a+b");
    Ok(())
}

#[test]
fn context_parameter_receives_the_call_context() -> Result<()> {
    let value: ArrayRef = Arc::new(StringArray::from(vec!["hi"]));
    let batches = call("echo_with_info_log", vec![("value", value)])?;
    assert_eq!(batches.len(), 2, "one log batch, then the result");
    assert_eq!(result::<StringArray>(&batches)?.value(0), "hi");
    Ok(())
}

#[test]
fn arrow_override_is_decoded() -> Result<()> {
    let value: ArrayRef = Arc::new(Int32Array::from(vec![-5]));
    let batches = call("echo_int32_as", vec![("value", value)])?;
    assert_eq!(result::<Int64Array>(&batches)?.value(0), -5);
    Ok(())
}

#[test]
fn void_and_renamed_methods() -> Result<()> {
    let batches = call("void_noop", vec![])?;
    assert!(
        batches
            .iter()
            .all(|b| b.num_rows() == 0 && b.num_columns() == 0)
    );
    let batches = call("wire_name", vec![])?;
    assert_eq!(result::<Int64Array>(&batches)?.value(0), 7);
    Ok(())
}
