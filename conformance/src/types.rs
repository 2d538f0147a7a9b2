//! The records and enums of the conformance protocol, mirroring the reference's
//! dataclasses (`vgi_rpc/conformance/_types.py`) field for field.
//!
//! Field order, names, Rust types (hence Arrow types) and nullability are part of the wire
//! contract: records travel as a nested IPC stream when they are a whole parameter, result
//! or header, and as struct columns when nested. `Option<T>` is the only source of a
//! nullable field.

use std::collections::{BTreeMap, BTreeSet};

use arrow_array::RecordBatch;
use arrow_schema::Schema;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc};
use vgi_rpc::schema::{Bytes, Decimal, DictString, LargeBinary, LargeString};
use vgi_rpc::{ArrowEnum, ArrowRecord};

/// `decimal128(20, 4)`, the only decimal type the protocol uses.
pub type Decimal20x4 = Decimal<20, 4>;

/// The conformance status enum, carried as `dictionary<int16, utf8>` holding the member
/// name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ArrowEnum)]
pub enum Status {
    /// `PENDING`.
    #[vgi(rename = "PENDING")]
    Pending,
    /// `ACTIVE`.
    #[vgi(rename = "ACTIVE")]
    Active,
    /// `CLOSED`.
    #[vgi(rename = "CLOSED")]
    Closed,
}

impl Status {
    /// The cycle `RichHeader::enum_field` picks from (`seed % 3`).
    pub const CYCLE: [Status; 3] = [Status::Pending, Status::Active, Status::Closed];
}

/// A 2D point (struct-in-struct nesting).
#[derive(Debug, Clone, Copy, PartialEq, ArrowRecord)]
pub struct Point {
    /// X coordinate.
    pub x: f64,
    /// Y coordinate.
    pub y: f64,
}

/// A bounding box with nested points.
#[derive(Debug, Clone, PartialEq, ArrowRecord)]
pub struct BoundingBox {
    /// Top-left corner.
    pub top_left: Point,
    /// Bottom-right corner.
    pub bottom_right: Point,
    /// Label.
    pub label: String,
}

/// Every container shape of the type mapping in one record.
#[derive(Debug, Clone, PartialEq, ArrowRecord)]
pub struct AllTypes {
    /// `utf8`.
    pub str_field: String,
    /// `binary`.
    pub bytes_field: Bytes,
    /// `int64`.
    pub int_field: i64,
    /// `float64`.
    pub float_field: f64,
    /// `bool`.
    pub bool_field: bool,
    /// `list<int64>`.
    pub list_of_int: Vec<i64>,
    /// `list<utf8>`.
    pub list_of_str: Vec<String>,
    /// `map<utf8, int64>`.
    pub dict_field: BTreeMap<String, i64>,
    /// Enum as `dictionary<int16, utf8>`.
    pub enum_field: Status,
    /// Nested struct.
    pub nested_point: Point,
    /// Nullable `utf8`.
    pub optional_str: Option<String>,
    /// Nullable `int64`.
    pub optional_int: Option<i64>,
    /// Nullable struct.
    pub optional_nested: Option<Point>,
    /// `list<struct>`.
    pub list_of_nested: Vec<Point>,
    /// `int32`.
    pub annotated_int32: i32,
    /// `float32`.
    pub annotated_float32: f32,
    /// `list<list<int64>>`.
    pub nested_list: Vec<Vec<i64>>,
    /// `map<utf8, utf8>`.
    pub dict_str_str: BTreeMap<String, String>,
}

/// Arrow primitive widths and the date/time/decimal mappings.
#[derive(Debug, Clone, PartialEq, ArrowRecord)]
pub struct WideTypes {
    /// `int8`.
    pub int8_field: i8,
    /// `int16`.
    pub int16_field: i16,
    /// `int32`.
    pub int32_field: i32,
    /// `uint8`.
    pub uint8_field: u8,
    /// `uint16`.
    pub uint16_field: u16,
    /// `uint32`.
    pub uint32_field: u32,
    /// `uint64`.
    pub uint64_field: u64,
    /// `float32`.
    pub float32_field: f32,
    /// `date32`.
    pub date_field: NaiveDate,
    /// `timestamp[us]`.
    pub timestamp_field: NaiveDateTime,
    /// `timestamp[us, tz=UTC]`.
    pub timestamp_utc_field: DateTime<Utc>,
    /// `time64[us]`.
    pub time_field: NaiveTime,
    /// `duration[us]`.
    pub duration_field: TimeDelta,
    /// `decimal128(20, 4)`.
    pub decimal_field: Decimal20x4,
    /// `large_utf8`.
    pub large_string_field: LargeString,
    /// `large_binary`.
    pub large_binary_field: LargeBinary,
    /// `fixed_size_binary(8)`.
    pub fixed_binary_field: [u8; 8],
}

/// Wide types nested inside list / map / optional positions.
#[derive(Debug, Clone, PartialEq, ArrowRecord)]
pub struct ContainerWideTypes {
    /// `list<decimal128(20, 4)>`.
    pub list_decimal: Vec<Decimal20x4>,
    /// `list<date32>`.
    pub list_date: Vec<NaiveDate>,
    /// `list<timestamp[us]>`.
    pub list_timestamp: Vec<NaiveDateTime>,
    /// Nullable `date32`.
    pub optional_date: Option<NaiveDate>,
    /// Nullable `decimal128(20, 4)`.
    pub optional_decimal: Option<Decimal20x4>,
    /// Nullable `timestamp[us]`.
    pub optional_timestamp: Option<NaiveDateTime>,
    /// `map<utf8, decimal128(20, 4)>`.
    pub dict_str_decimal: BTreeMap<String, Decimal20x4>,
    /// A set, carried as `list<int64>` (the reference's `frozenset[int]`).
    pub frozenset_int: BTreeSet<i64>,
    /// `list<int64>` whose items may be null.
    pub list_optional_int: Vec<Option<i64>>,
}

/// Multi-level nesting and dictionary-encoded strings.
#[derive(Debug, Clone, PartialEq, ArrowRecord)]
pub struct DeepNested {
    /// `list<list<decimal128(20, 4)>>`.
    pub list_of_lists_decimal: Vec<Vec<Decimal20x4>>,
    /// Nullable `list<date32>`.
    pub optional_list_date: Option<Vec<NaiveDate>>,
    /// `dictionary<int16, utf8>`.
    pub dict_encoded_string: DictString,
    /// `list<dictionary<int16, utf8>>`.
    pub list_of_dict_encoded: Vec<DictString>,
}

/// A record batch and a schema carried as nested IPC in `binary` columns.
#[derive(Debug, Clone, PartialEq, ArrowRecord)]
pub struct EmbeddedArrow {
    /// One IPC stream (schema, the batch, EOS).
    pub batch: RecordBatch,
    /// One IPC schema message.
    pub schema: Schema,
}

/// Enums and records nested in containers; the result of `pack_nested_containers`.
#[derive(Debug, Clone, PartialEq, ArrowRecord)]
pub struct NestedContainers {
    /// `list<dictionary<int16, utf8>>`.
    pub statuses: Vec<Status>,
    /// `list<struct<x, y>>`.
    pub points: Vec<Point>,
    /// `map<utf8, dictionary<int16, utf8>>`.
    pub status_by_name: BTreeMap<String, Status>,
    /// The distinct statuses (the reference's `frozenset[Status]`).
    pub frozen_statuses: BTreeSet<Status>,
    /// The first status, if any.
    pub tagged_status: Option<Status>,
    /// The first point, if any.
    pub tagged_point: Option<Point>,
    /// A small batch, `{value: int64 [1, 2]}`.
    pub tagged_batch: Option<RecordBatch>,
}

/// The two-field stream header of `produce_with_header*` and `exchange_with_header`.
#[derive(Debug, Clone, PartialEq, ArrowRecord)]
pub struct ConformanceHeader {
    /// How many batches the stream will produce (0 for exchanges).
    pub total_expected: i64,
    /// Human-readable description.
    pub description: String,
}

/// The multi-type stream header; every field is derived from a seed by [`RichHeader::from_seed`].
#[derive(Debug, Clone, PartialEq, ArrowRecord)]
pub struct RichHeader {
    /// `seed-<s>`.
    pub str_field: String,
    /// `[s, s+1, s+2] mod 256`.
    pub bytes_field: Bytes,
    /// `7 s`.
    pub int_field: i64,
    /// `1.5 s`.
    pub float_field: f64,
    /// `s` is even.
    pub bool_field: bool,
    /// `[s, s+1, s+2]`.
    pub list_of_int: Vec<i64>,
    /// `["item-<s>", "item-<s+1>"]`.
    pub list_of_str: Vec<String>,
    /// `{"a": s, "b": s+1}`.
    pub dict_field: BTreeMap<String, i64>,
    /// `[PENDING, ACTIVE, CLOSED][s mod 3]`.
    pub enum_field: Status,
    /// `(s, 2 s)`.
    pub nested_point: Point,
    /// `opt-<s>` when `s` is even.
    pub optional_str: Option<String>,
    /// `3 s` when `s` is odd.
    pub optional_int: Option<i64>,
    /// `(s, 0)` when `s mod 3 == 0`.
    pub optional_nested: Option<Point>,
    /// `[(s, s+1)]`.
    pub list_of_nested: Vec<Point>,
    /// `[[s, s+1], [s+2]]`.
    pub nested_list: Vec<Vec<i64>>,
    /// `s mod 1000`.
    pub annotated_int32: i32,
    /// `s / 3`.
    pub annotated_float32: f32,
    /// `{"key": "val-<s>"}`.
    pub dict_str_str: BTreeMap<String, String>,
}

/// A producer row `{index: int64?, value: int64?}` (the reference's `_COUNTER_SCHEMA`).
#[derive(Debug, Clone, Copy, PartialEq, ArrowRecord)]
pub struct CounterRow {
    /// Row index.
    pub index: Option<i64>,
    /// Ten times the index.
    pub value: Option<i64>,
}

/// An exchange row `{value: float64?}` (the reference's `_SCALE_*_SCHEMA`).
#[derive(Debug, Clone, Copy, PartialEq, ArrowRecord)]
pub struct ScaleRow {
    /// The value.
    pub value: Option<f64>,
}

/// An `{value: int64?}` row (annotated batches and the session counters).
#[derive(Debug, Clone, Copy, PartialEq, ArrowRecord)]
pub struct IntValueRow {
    /// The value.
    pub value: Option<i64>,
}

/// The input row of `exchange_session_counter`, `{by: int64?}`.
#[derive(Debug, Clone, Copy, PartialEq, ArrowRecord)]
pub struct IncrementRow {
    /// The increment.
    pub by: Option<i64>,
}

/// The output row of `produce_tick_metadata`, `{index: int64?, seen: utf8?}`.
#[derive(Debug, Clone, PartialEq, ArrowRecord)]
pub struct TickRow {
    /// Tick index.
    pub index: Option<i64>,
    /// The tick's `vgi.conformance.tick` metadata value, or `""`.
    pub seen: Option<String>,
}

/// The output row of `exchange_accumulate`, `{running_sum: float64?, exchange_count: int64?}`.
#[derive(Debug, Clone, Copy, PartialEq, ArrowRecord)]
pub struct AccumulateRow {
    /// Sum of every value seen so far.
    pub running_sum: Option<f64>,
    /// Number of exchanges so far.
    pub exchange_count: Option<i64>,
}

/// The output row of `exchange_input_metadata`, `{seen: utf8?, keys: utf8?}`.
#[derive(Debug, Clone, PartialEq, ArrowRecord)]
pub struct InputMetadataRow {
    /// The input's `vgi.conformance.input` metadata value, or `""`.
    pub seen: Option<String>,
    /// Every metadata key, sorted and comma-joined, or `""`.
    pub keys: Option<String>,
}
