//! The native-client lane (docs/native-client-conformance.md, vgi-rpc 0.52.2): OUR client
//! against the reference's `python -m vgi_rpc.conformance.client_worker`
//! (`ClientConformanceService`, a worker only the reference has) on every transport.
//!
//! The shared suite drives servers with the Python client, so it cannot notice a client
//! that builds batches from runtime samples instead of the declared schema. This lane
//! sends the typed-exchange cases the contract requires (an all-null row, a zero-row
//! batch, a populated row with dictionary, timestamp, decimal, list and nested struct
//! values) and checks the echo exactly, plus the unary, producer and reflection cases.
//!
//! Differences from the document, where the installed 0.52.2 code wins: `__describe__` is
//! retired (it answers `UNIMPLEMENTED`), so the description is read through
//! `vgi_rpc.Reflection.v1`.

use std::sync::Arc;

use arrow_array::builder::{
    Decimal128Builder, Float64Builder, Int32Builder, ListBuilder, StringBuilder,
    StringDictionaryBuilder, StructBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int16Type, Int64Type};
use arrow_array::{Array, ArrayRef, BinaryArray, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use vgi_rpc::client::{CallOptions, Client, ConnectOptions, Target};
use vgi_rpc::wire::{self, Limits, Metadata, StreamItem};
use vgi_rpc::{Error, ErrorCode};

use crate::harness::Backend;

const PROTOCOL: &str = "ClientConformanceService";

matrix!(client_worker: echo_bytes, producers, typed_exchange, describe);

/// A client that does not reconnect: every check runs on one connection.
fn connect(b: &Backend) -> Client {
    b.connect_with(ConnectOptions::default().with_reconnect(false))
}

fn target() -> Target {
    Target::new(PROTOCOL, None)
}

fn empty_params() -> RecordBatch {
    RecordBatch::new_empty(Arc::new(Schema::empty()))
}

fn one_row(fields: Vec<Field>, columns: Vec<ArrayRef>) -> RecordBatch {
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

/// `echo_bytes` round-trips bytes exactly, the empty value and a 1 MiB value included.
fn echo_bytes(b: &mut Backend) {
    echo_all_bytes(&mut connect(b));
}

fn echo_all_bytes(client: &mut Client) {
    let big: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    let all: Vec<u8> = (0..=255).collect();
    for value in [&b""[..], &all, &big] {
        let params = one_row(
            vec![Field::new("value", DataType::Binary, false)],
            vec![Arc::new(BinaryArray::from_vec(vec![value]))],
        );
        let result = client
            .call(&target(), "echo_bytes", &params, &CallOptions::default())
            .unwrap();
        let batch = result.batch.expect("echo_bytes returns a value");
        let column = batch.column_by_name("result").expect("a `result` column");
        assert_eq!(column.as_binary::<i32>().value(0), value);
    }
}

/// Ticks a producer to its end, returning every batch.
fn produce(client: &mut Client, method: &str, params: &RecordBatch) -> Vec<RecordBatch> {
    let mut stream = client
        .open_stream(&target(), method, params, &CallOptions::default())
        .unwrap();
    let mut batches = Vec::new();
    while let Some(batch) = stream.tick().unwrap() {
        assert!(batches.len() < 1000, "{method} never ends");
        batches.push(batch);
    }
    stream.close().unwrap();
    batches
}

fn producer_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("index", DataType::Int64, false),
        Field::new("payload", DataType::Binary, false),
    ]))
}

fn indices(batches: &[RecordBatch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect()
}

/// `producer_sequence(3, 4)` yields indices 0, 1, 2 once each, then ends; the other
/// producer fixtures keep a zero-row data batch and end on their own.
fn producers(b: &mut Backend) {
    let client = &mut connect(b);
    let params = one_row(
        vec![
            Field::new("count", DataType::Int64, false),
            Field::new("payload_bytes", DataType::Int64, false),
        ],
        vec![
            Arc::new(Int64Array::from(vec![3])),
            Arc::new(Int64Array::from(vec![4])),
        ],
    );
    let batches = produce(client, "producer_sequence", &params);
    assert_eq!(indices(&batches), vec![0, 1, 2]);
    for (i, batch) in batches.iter().enumerate() {
        assert_eq!(batch.schema(), producer_schema());
        let payload = batch.column(1).as_binary::<i32>().value(0);
        assert_eq!(payload, vec![i as u8; 4].as_slice());
    }

    let batches = produce(client, "producer_zero_row_then_value", &empty_params());
    assert_eq!(
        batches.len(),
        2,
        "the zero-row data batch is delivered, not swallowed"
    );
    assert_eq!(batches[0].num_rows(), 0);
    assert_eq!(batches[0].schema(), producer_schema());
    assert_eq!(indices(&batches[1..]), vec![7]);

    let batches = produce(client, "producer_emit_and_finish", &empty_params());
    assert_eq!(indices(&batches), vec![99]);

    assert!(produce(client, "producer_empty", &empty_params()).is_empty());
}

/// `TYPED_EXCHANGE_SCHEMA`, field for field.
fn typed_schema() -> SchemaRef {
    let nested = Fields::from(vec![
        Field::new("name", DataType::Utf8, true),
        Field::new_list("scores", Field::new("item", DataType::Int32, true), true),
    ]);
    Arc::new(Schema::new(vec![
        Field::new("nullable_float", DataType::Float64, true),
        Field::new_list("tags", Field::new("item", DataType::Utf8, true), true),
        Field::new_dictionary("category", DataType::Int16, DataType::Utf8, true),
        Field::new(
            "event_time",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("amount", DataType::Decimal128(18, 4), true),
        Field::new("nested", DataType::Struct(nested), true),
    ]))
}

/// One populated typed-exchange row.
#[derive(Clone, Copy)]
struct TypedRow {
    float: f64,
    tags: &'static [&'static str],
    category: &'static str,
    micros: i64,
    amount: i128,
    name: &'static str,
    scores: &'static [i32],
}

/// A typed-exchange batch built from the declared schema. `None` rows are all-null.
fn typed_batch(rows: &[Option<TypedRow>]) -> RecordBatch {
    let schema = typed_schema();
    let mut floats = Float64Builder::new();
    let mut tags =
        ListBuilder::new(StringBuilder::new()).with_field(Field::new("item", DataType::Utf8, true));
    let mut category = StringDictionaryBuilder::<Int16Type>::new();
    let mut times = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    let mut amounts = Decimal128Builder::new()
        .with_precision_and_scale(18, 4)
        .unwrap();
    let DataType::Struct(nested_fields) = schema.field(5).data_type().clone() else {
        unreachable!()
    };
    let mut nested = StructBuilder::new(
        nested_fields,
        vec![
            Box::new(StringBuilder::new()),
            Box::new(ListBuilder::new(Int32Builder::new()).with_field(Field::new(
                "item",
                DataType::Int32,
                true,
            ))),
        ],
    );
    for row in rows {
        match row {
            None => {
                floats.append_null();
                tags.append_null();
                category.append_null();
                times.append_null();
                amounts.append_null();
                nested
                    .field_builder::<StringBuilder>(0)
                    .unwrap()
                    .append_null();
                nested
                    .field_builder::<ListBuilder<Int32Builder>>(1)
                    .unwrap()
                    .append_null();
                nested.append_null();
            }
            Some(row) => {
                floats.append_value(row.float);
                for tag in row.tags {
                    tags.values().append_value(tag);
                }
                tags.values().append_null();
                tags.append(true);
                category.append_value(row.category);
                times.append_value(row.micros);
                amounts.append_value(row.amount);
                nested
                    .field_builder::<StringBuilder>(0)
                    .unwrap()
                    .append_value(row.name);
                let list = nested
                    .field_builder::<ListBuilder<Int32Builder>>(1)
                    .unwrap();
                list.values().append_slice(row.scores);
                list.values().append_null();
                list.append(true);
                nested.append(true);
            }
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(floats.finish()),
        Arc::new(tags.finish()),
        Arc::new(category.finish()),
        Arc::new(times.finish()),
        Arc::new(amounts.finish()),
        Arc::new(nested.finish()),
    ];
    RecordBatch::try_new(schema, columns).unwrap()
}

/// `typed_exchange` echoes every batch of one exchange stream with the exact schema.
fn typed_exchange(b: &mut Backend) {
    let client = &mut connect(b);
    let populated = TypedRow {
        float: -2.5,
        tags: &["red", "blue"],
        category: "alpha",
        micros: 1_700_000_000_123_456,
        amount: 123_456_789,
        name: "n1",
        scores: &[1, -2, 3],
    };
    let cases = [
        ("one all-null row", typed_batch(&[None])),
        ("a zero-row batch", typed_batch(&[])),
        ("a populated row", typed_batch(&[Some(populated)])),
        (
            "mixed rows",
            typed_batch(&[Some(populated), None, Some(populated)]),
        ),
    ];
    let mut stream = client
        .open_stream(
            &target(),
            "typed_exchange",
            &empty_params(),
            &CallOptions::default(),
        )
        .unwrap();
    for (what, input) in &cases {
        let output = stream
            .exchange(input)
            .unwrap_or_else(|e| panic!("typed_exchange with {what}: {e}"));
        assert_eq!(output.schema(), typed_schema(), "{what}: echoed schema");
        assert_eq!(&output, input, "{what}: echoed values");
    }
    stream.close().unwrap();
}

/// The one-row record inside a reflection reply's `result` binary column.
fn reflection(client: &mut Client, method: &str, params: &RecordBatch) -> RecordBatch {
    let reply = client
        .call(
            &Target::new("vgi_rpc.Reflection.v1", None),
            method,
            params,
            &CallOptions::default(),
        )
        .unwrap()
        .batch
        .expect("a reflection reply");
    let mut bytes = reply
        .column_by_name("result")
        .unwrap()
        .as_binary::<i32>()
        .value(0);
    let limits = Limits::default();
    let mut decoder = wire::read_stream_start(&mut bytes, &limits).unwrap();
    match wire::read_stream_item(&mut bytes, &mut decoder, &limits).unwrap() {
        StreamItem::Batch(batch, _) => batch,
        StreamItem::End => panic!("empty reflection payload"),
    }
}

/// Reflection lists `ClientConformanceService` and reports each method's shape; the
/// retired `__describe__` is a typed `UNIMPLEMENTED` error; `__transport_options__` is
/// answered without being described. The connection is still usable after all of it.
fn describe(b: &mut Backend) {
    let client = &mut connect(b);
    let listing = reflection(client, "list_protocols", &empty_params());
    let protocols = listing
        .column_by_name("protocols")
        .unwrap()
        .as_list::<i32>()
        .value(0);
    let names: Vec<String> = protocols
        .as_struct()
        .column_by_name("protocol")
        .unwrap()
        .as_string::<i32>()
        .iter()
        .map(|n| n.unwrap().to_owned())
        .collect();
    assert!(names.contains(&PROTOCOL.to_owned()), "{names:?}");

    let params = one_row(
        vec![Field::new("protocol", DataType::Utf8, false)],
        vec![Arc::new(StringArray::from(vec![PROTOCOL]))],
    );
    let description = reflection(client, "describe", &params);
    let methods = description
        .column_by_name("methods")
        .unwrap()
        .as_list::<i32>()
        .value(0);
    let methods = methods.as_struct();
    let column = |name: &str| {
        methods
            .column_by_name(name)
            .unwrap()
            .as_string::<i32>()
            .clone()
    };
    let (names, types, kinds) = (column("name"), column("method_type"), column("stream_kind"));
    let shape = |method: &str| {
        let i = (0..names.len())
            .find(|&i| names.value(i) == method)
            .unwrap_or_else(|| panic!("{method} is not described"));
        (types.value(i).to_owned(), kinds.value(i).to_owned())
    };
    assert_eq!(shape("echo_bytes").0, "unary");
    assert_eq!(
        shape("typed_exchange"),
        ("stream".into(), "exchange".into())
    );
    for producer in [
        "producer_sequence",
        "producer_zero_row_then_value",
        "producer_emit_and_finish",
        "producer_empty",
    ] {
        assert_eq!(
            shape(producer),
            ("stream".into(), "producer".into()),
            "{producer}"
        );
    }
    assert!(
        !(0..names.len()).any(|i| names.value(i).starts_with("__")),
        "built-ins are not described"
    );

    match client.call(
        &target(),
        "__describe__",
        &empty_params(),
        &CallOptions::default(),
    ) {
        Err(Error::Rpc(e)) => {
            assert_eq!(e.error_type, "MethodNotImplementedError");
            assert_eq!(e.code, ErrorCode::Unimplemented);
            assert_eq!(e.kind.as_deref(), Some("method_not_implemented"));
            assert!(e.message.contains("vgi_rpc.Reflection.v1"), "{}", e.message);
        }
        other => panic!("__describe__ should be refused as retired, got {other:?}"),
    }

    let options =
        CallOptions::default().with_metadata(Metadata::new().with("vgi_rpc.transport.shm", "true"));
    let answer = client
        .call(
            &target(),
            "__transport_options__",
            &empty_params(),
            &options,
        )
        .expect("__transport_options__ is answered");
    // A zero-row, empty-schema batch: no result value. (Its `vgi_rpc.transport.shm`
    // metadata is not observable: the client's UnaryResult carries no metadata yet.)
    assert!(answer.batch.is_none());
    echo_all_bytes(client);
}
