//! The `ConformanceService` protocol (version 2.0.0) as a Rust trait: 90 methods whose
//! names, parameter names and order, Arrow types and nullability match the reference's
//! `_protocol.py` exactly (the protocol hash depends on it). Stream methods name this
//! crate's state types, so the trait describes this implementation's wire surface rather
//! than an abstract interface.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc};
use vgi_rpc::prelude::*;
use vgi_rpc::schema::{Blob, Bytes, DictString, LargeBinary, LargeString};

use crate::types::{
    AllTypes, BoundingBox, ConformanceHeader, ContainerWideTypes, Decimal20x4, DeepNested,
    EmbeddedArrow, NestedContainers, Point, RichHeader, Status, WideTypes,
};
use crate::{exchanges, producers};

/// Wire-protocol conformance service exercising every framework capability.
#[vgi_rpc::service(protocol = "ConformanceService", version = "2.0.0")]
pub trait Conformance: Send + Sync + 'static {
    // ----- Unary: scalar echo -----

    /// Echo a string value.
    fn echo_string(&self, value: String) -> Result<String>;
    /// Echo a bytes value.
    fn echo_bytes(&self, data: Blob) -> Result<Blob>;
    /// Return `target_bytes` zero bytes (for response-cap tests).
    fn oversized_unary(&self, target_bytes: i64) -> Result<Bytes>;
    /// Return `value` through a pre-published external reference (needs external storage).
    fn published_string(&self, value: String, include_sha256: bool) -> Result<String>;
    /// Echo an integer value.
    fn echo_int(&self, value: i64) -> Result<i64>;
    /// Echo a float value.
    fn echo_float(&self, value: f64) -> Result<f64>;
    /// Echo a boolean value.
    fn echo_bool(&self, value: bool) -> Result<bool>;

    // ----- Unary: void returns -----

    /// No-op returning void.
    fn void_noop(&self) -> Result<()>;
    /// Accept a parameter, return void.
    fn void_with_param(&self, value: i64) -> Result<()>;

    // ----- Unary: complex types -----

    /// Echo an enum value.
    fn echo_enum(&self, status: Status) -> Result<Status>;
    /// Echo a list of strings.
    fn echo_list(&self, values: Vec<String>) -> Result<Vec<String>>;
    /// Echo a dict mapping.
    fn echo_dict(&self, mapping: BTreeMap<String, i64>) -> Result<BTreeMap<String, i64>>;
    /// Echo a nested list.
    fn echo_nested_list(&self, matrix: Vec<Vec<i64>>) -> Result<Vec<Vec<i64>>>;

    // ----- Unary: optional / nullable -----

    /// Echo an optional string (may be None).
    fn echo_optional_string(&self, value: Option<String>) -> Result<Option<String>>;
    /// Echo an optional int (may be None).
    fn echo_optional_int(&self, value: Option<i64>) -> Result<Option<i64>>;
    /// Echo an optional structured value, including None.
    fn echo_optional_point(&self, point: Option<Point>) -> Result<Option<Point>>;
    /// Echo an optional int32.
    fn echo_annotated_optional_int(&self, value: Option<i32>) -> Result<Option<i32>>;
    /// Echo a non-null int32 (the reference's explicit non-null override inside Optional).
    fn echo_outer_optional_non_null(&self, value: i32) -> Result<i32>;

    // ----- Unary: records -----

    /// Echo a Point.
    fn echo_point(&self, point: Point) -> Result<Point>;
    /// Echo an AllTypes record exercising every type mapping.
    fn echo_all_types(&self, data: AllTypes) -> Result<AllTypes>;
    /// Echo a BoundingBox with nested Points.
    fn echo_bounding_box(&self, r#box: BoundingBox) -> Result<BoundingBox>;
    /// Accept a Point (binary on the wire) and format it as `Point(<x>, <y>)`.
    fn inspect_point(&self, point: Point) -> Result<String>;

    // ----- Unary: annotated and wide Arrow types -----

    /// Echo an int32 value.
    fn echo_int32(&self, value: i32) -> Result<i32>;
    /// Echo a float32 value.
    fn echo_float32(&self, value: f32) -> Result<f32>;
    /// Echo an int8 value.
    fn echo_int8(&self, value: i8) -> Result<i8>;
    /// Echo an int16 value.
    fn echo_int16(&self, value: i16) -> Result<i16>;
    /// Echo a uint8 value.
    fn echo_uint8(&self, value: u8) -> Result<u8>;
    /// Echo a uint16 value.
    fn echo_uint16(&self, value: u16) -> Result<u16>;
    /// Echo a uint32 value.
    fn echo_uint32(&self, value: u32) -> Result<u32>;
    /// Echo a uint64 value (exercises values above int64 max).
    fn echo_uint64(&self, value: u64) -> Result<u64>;
    /// Echo a date32 value.
    fn echo_date(&self, value: NaiveDate) -> Result<NaiveDate>;
    /// Echo a naive microsecond timestamp.
    fn echo_timestamp(&self, value: NaiveDateTime) -> Result<NaiveDateTime>;
    /// Echo a UTC-tagged microsecond timestamp.
    fn echo_timestamp_utc(&self, value: DateTime<Utc>) -> Result<DateTime<Utc>>;
    /// Echo a microsecond time-of-day value.
    fn echo_time(&self, value: NaiveTime) -> Result<NaiveTime>;
    /// Echo a microsecond duration.
    fn echo_duration(&self, value: TimeDelta) -> Result<TimeDelta>;
    /// Echo a decimal128(20, 4) value.
    fn echo_decimal(&self, value: Decimal20x4) -> Result<Decimal20x4>;
    /// Echo a large_string value.
    fn echo_large_string(&self, value: LargeString) -> Result<LargeString>;
    /// Echo a large_binary value.
    fn echo_large_binary(&self, value: LargeBinary) -> Result<LargeBinary>;
    /// Echo a fixed_size_binary(8) value.
    fn echo_fixed_binary(&self, value: [u8; 8]) -> Result<[u8; 8]>;
    /// Round-trip every Arrow primitive width via a single record.
    fn echo_wide_types(&self, data: WideTypes) -> Result<WideTypes>;
    /// Round-trip wide Arrow types nested inside list/dict/optional.
    fn echo_container_wide_types(&self, data: ContainerWideTypes) -> Result<ContainerWideTypes>;
    /// Round-trip a record batch and a schema carried as nested IPC.
    fn echo_embedded_arrow(&self, data: EmbeddedArrow) -> Result<EmbeddedArrow>;
    /// Round-trip multi-level nested containers and dictionary-encoded strings.
    fn echo_deep_nested(&self, data: DeepNested) -> Result<DeepNested>;
    /// Exercise recursive parameter conversion and nested reconstruction.
    fn pack_nested_containers(
        &self,
        statuses: Vec<Status>,
        points: Vec<Point>,
        status_by_name: BTreeMap<String, Status>,
    ) -> Result<NestedContainers>;
    /// Echo enum members nested in a top-level list.
    fn echo_status_list(&self, statuses: Vec<Status>) -> Result<Vec<Status>>;
    /// Echo a string carried as a dictionary-encoded Arrow column.
    fn echo_dict_encoded_string(&self, value: DictString) -> Result<DictString>;

    // ----- Unary: multiple parameters and client-side defaults -----

    /// Add two floats.
    fn add_floats(&self, a: f64, b: f64) -> Result<f64>;
    /// Concatenate prefix + separator + suffix.
    fn concatenate(
        &self,
        prefix: String,
        suffix: String,
        #[vgi(default = "-")] separator: String,
    ) -> Result<String>;
    /// Return a formatted string showing all parameter values.
    fn with_defaults(
        &self,
        required: i64,
        #[vgi(default = "default")] optional_str: String,
        #[vgi(default = 42)] optional_int: i64,
    ) -> Result<String>;

    // ----- Unary: errors -----

    /// Raise a ValueError with the given message.
    fn raise_value_error(&self, message: String) -> Result<String>;
    /// Raise a RuntimeError with the given message.
    fn raise_runtime_error(&self, message: String) -> Result<String>;
    /// Raise a TypeError with the given message.
    fn raise_type_error(&self, message: String) -> Result<String>;

    // ----- Unary: client-directed logging -----

    /// Echo value, emitting one INFO log.
    fn echo_with_info_log(&self, ctx: &CallContext, value: String) -> Result<String>;
    /// Echo value, emitting DEBUG + INFO + WARN logs.
    fn echo_with_multi_logs(&self, ctx: &CallContext, value: String) -> Result<String>;
    /// Echo value, emitting an INFO log with extra key-value pairs.
    fn echo_with_log_extras(&self, ctx: &CallContext, value: String) -> Result<String>;
    /// Echo value, emitting one log at each of TRACE/DEBUG/INFO/WARN/ERROR.
    fn echo_with_all_log_levels(&self, ctx: &CallContext, value: String) -> Result<String>;

    // ----- Producer streams -----

    /// Produce count batches with {index, value}.
    fn produce_n(&self, count: i64) -> Result<Producer<producers::Counter>>;
    /// Report application metadata received on each producer tick.
    fn produce_tick_metadata(&self, count: i64) -> Result<Producer<producers::TickMetadata>>;
    /// Produce zero batches (finish immediately).
    fn produce_empty(&self) -> Result<Producer<producers::Empty>>;
    /// Produce exactly one batch.
    fn produce_single(&self) -> Result<Producer<producers::OneBatch>>;
    /// Produce batch_count batches of rows_per_batch rows each.
    fn produce_large_batches(
        &self,
        rows_per_batch: i64,
        batch_count: i64,
    ) -> Result<Producer<producers::LargeBatches>>;
    /// Produce count batches, each carrying distinct per-emit metadata.
    fn produce_annotated_batches(
        &self,
        count: i64,
        rows_per_batch: i64,
    ) -> Result<Producer<producers::Annotated>>;
    /// Produce batches with an INFO log before each.
    fn produce_with_logs(&self, count: i64) -> Result<Producer<producers::Logging>>;
    /// Raise after emitting emit_before_error batches.
    fn produce_error_mid_stream(
        &self,
        emit_before_error: i64,
    ) -> Result<Producer<producers::ErrorAfter>>;
    /// Raise during stream initialization.
    fn produce_error_on_init(&self) -> Result<Producer<producers::Counter>>;
    /// Emit one batch of rows_per_batch rows, then finish.
    fn produce_oversized_batch(&self, rows_per_batch: i64)
    -> Result<Producer<producers::OneBatch>>;

    // ----- Producer streams with headers -----

    /// Produce batches with a stream header.
    fn produce_with_header(
        &self,
        count: i64,
    ) -> Result<Producer<producers::Counter, ConformanceHeader>>;
    /// Produce batches with a header and INFO logs.
    fn produce_with_header_and_logs(
        &self,
        ctx: &CallContext,
        count: i64,
    ) -> Result<Producer<producers::Counter, ConformanceHeader>>;

    // ----- Exchange streams -----

    /// Multiply input values by factor.
    fn exchange_scale(&self, factor: f64) -> Result<Exchange<exchanges::Scale>>;
    /// Accumulate running sum and exchange count across exchanges.
    fn exchange_accumulate(&self) -> Result<Exchange<exchanges::Accumulate>>;
    /// Exchange with INFO + DEBUG logs per exchange.
    fn exchange_with_logs(&self) -> Result<Exchange<exchanges::Logging>>;
    /// Raise on the Nth exchange (1-indexed).
    fn exchange_error_on_nth(&self, fail_on: i64) -> Result<Exchange<exchanges::FailOnNth>>;
    /// Exchange stream with zero-column input and output.
    fn exchange_zero_columns(&self) -> Result<Exchange<exchanges::ZeroColumns>>;
    /// Report the custom metadata each exchange input batch was handed with.
    fn exchange_input_metadata(&self) -> Result<Exchange<exchanges::InputMetadata>>;
    /// Raise during exchange stream initialization.
    fn exchange_error_on_init(&self) -> Result<Exchange<exchanges::Scale>>;
    /// Exchange that emits an oversized output batch for any input.
    fn exchange_oversized(&self, rows_per_batch: i64) -> Result<Exchange<exchanges::Oversized>>;

    // ----- Exchange streams with headers -----

    /// Exchange stream with a header.
    fn exchange_with_header(
        &self,
        factor: f64,
    ) -> Result<Exchange<exchanges::Scale, ConformanceHeader>>;

    // ----- Cancellation -----

    /// Produce one batch per tick forever; designed to be cancelled by the client.
    fn cancellable_producer(&self) -> Result<Producer<producers::Cancellable>>;
    /// Echo each input batch; designed to be cancelled by the client.
    fn cancellable_exchange(&self) -> Result<Exchange<exchanges::Cancellable>>;
    /// Return `[produce_calls, exchange_calls, on_cancel_calls]` observed on the server.
    fn cancel_probe_counters(&self) -> Result<Vec<i64>>;
    /// Reset all cancel-probe counters to zero on the server.
    fn reset_cancel_probe(&self) -> Result<()>;

    // ----- Dynamic streams with rich multi-type headers -----

    /// Produce batches with a rich multi-type stream header.
    fn produce_with_rich_header(
        &self,
        seed: i64,
        count: i64,
    ) -> Result<Producer<producers::Counter, RichHeader>>;
    /// Produce batches with a dynamic output schema and rich header.
    fn produce_dynamic_schema(
        &self,
        seed: i64,
        count: i64,
        include_strings: bool,
        include_floats: bool,
    ) -> Result<Producer<producers::Dynamic, RichHeader>>;
    /// Exchange expecting float64 input; tests server-side cast for compatible schemas.
    fn exchange_cast_compatible(&self) -> Result<Exchange<exchanges::Scale>>;
    /// Exchange stream with a rich multi-type header.
    fn exchange_with_rich_header(
        &self,
        seed: i64,
        factor: f64,
    ) -> Result<Exchange<exchanges::Scale, RichHeader>>;

    // ----- Sticky sessions (HTTP only) -----

    /// Open a sticky session holding a counter; return its initial value.
    fn open_counter(&self, ctx: &CallContext, initial: i64) -> Result<i64>;
    /// Increment the sticky session's counter; return the post-increment value.
    fn increment_counter(&self, ctx: &CallContext, by: i64) -> Result<i64>;
    /// Close the sticky session; return the counter's final value before close.
    fn close_counter(&self, ctx: &CallContext) -> Result<i64>;
    /// Emit count increments of the sticky session counter via a producer stream.
    fn stream_session_counter(&self, count: i64) -> Result<Producer<producers::SessionCounter>>;
    /// Exchange stream adding each input `by` column to the sticky session counter.
    fn exchange_session_counter(&self) -> Result<Exchange<exchanges::SessionCounter>>;
}
