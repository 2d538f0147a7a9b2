//! [`ConformanceImpl`], the implementation of [`Conformance`]: unary bodies inline
//! (mostly identity echoes), stream methods building the states of
//! [`crate::producers`] and [`crate::exchanges`].
//!
//! Behaviour, messages and log texts follow the reference's `_impl.py`. Features this
//! worker does not offer yet (external storage, HTTP sticky sessions) fail exactly as the
//! reference does without them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc};
use vgi_rpc::prelude::*;
use vgi_rpc::schema::{Blob, Bytes, DictString, LargeBinary, LargeString};

use crate::exchanges;
use crate::probe::CancelProbe;
use crate::producers::{self, NO_STICKY_COUNTER};
use crate::pytext::python_float_repr;
use crate::service::Conformance;
use crate::types::{
    AllTypes, BoundingBox, ConformanceHeader, ContainerWideTypes, Decimal20x4, DeepNested,
    EmbeddedArrow, NestedContainers, Point, RichHeader, Status, WideTypes,
};

/// The conformance service implementation. Cloning shares the cancel probe.
#[derive(Debug, Clone, Default)]
pub struct ConformanceImpl {
    probe: CancelProbe,
}

impl ConformanceImpl {
    /// A fresh implementation with zeroed cancel-probe counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// The cancel-probe counters the cancellable streams report to.
    pub fn probe(&self) -> &CancelProbe {
        &self.probe
    }
}

/// Logs `<level>: <value>` at `level` (the logging echoes' message format).
fn log_level_echo(ctx: &CallContext, level: LogLevel, value: &str) {
    ctx.log(level, format!("{}: {value}", level.as_str().to_lowercase()));
}

/// Implements identity echoes: `fn name(&self, value: T) -> Result<T> { Ok(value) }`.
macro_rules! identity_echoes {
    ($($name:ident: $ty:ty,)*) => {
        $(
            fn $name(&self, value: $ty) -> Result<$ty> {
                Ok(value)
            }
        )*
    };
}

impl Conformance for ConformanceImpl {
    // Echo methods return their argument unchanged (the wire types do the work).
    identity_echoes! {
        echo_string: String,
        // A `Blob` is the request's own memory: the 1 MiB echo copies nothing.
        echo_bytes: Blob,
        echo_int: i64,
        echo_float: f64,
        echo_bool: bool,
        echo_enum: Status,
        echo_list: Vec<String>,
        echo_dict: BTreeMap<String, i64>,
        echo_nested_list: Vec<Vec<i64>>,
        echo_optional_string: Option<String>,
        echo_optional_int: Option<i64>,
        echo_optional_point: Option<Point>,
        echo_annotated_optional_int: Option<i32>,
        echo_outer_optional_non_null: i32,
        echo_point: Point,
        echo_all_types: AllTypes,
        echo_bounding_box: BoundingBox,
        echo_int32: i32,
        echo_float32: f32,
        echo_int8: i8,
        echo_int16: i16,
        echo_uint8: u8,
        echo_uint16: u16,
        echo_uint32: u32,
        echo_uint64: u64,
        echo_date: NaiveDate,
        echo_timestamp: NaiveDateTime,
        echo_timestamp_utc: DateTime<Utc>,
        echo_time: NaiveTime,
        echo_duration: TimeDelta,
        echo_decimal: Decimal20x4,
        echo_large_string: LargeString,
        echo_large_binary: LargeBinary,
        echo_fixed_binary: [u8; 8],
        echo_wide_types: WideTypes,
        echo_container_wide_types: ContainerWideTypes,
        echo_embedded_arrow: EmbeddedArrow,
        echo_deep_nested: DeepNested,
        echo_status_list: Vec<Status>,
        echo_dict_encoded_string: DictString,
    }

    fn oversized_unary(&self, target_bytes: i64) -> Result<Bytes> {
        let len = usize::try_from(target_bytes)
            .map_err(|_| RpcError::value_error("target_bytes must be non-negative"))?;
        let mut payload = Vec::new();
        payload
            .try_reserve_exact(len)
            .map_err(|_| RpcError::new("MemoryError", format!("cannot allocate {len} bytes")))?;
        payload.resize(len, 0);
        Ok(Bytes(payload))
    }

    fn published_string(&self, _value: String, _include_sha256: bool) -> Result<String> {
        Err(RpcError::runtime_error("published_string requires external storage").into())
    }

    fn void_noop(&self) -> Result<()> {
        Ok(())
    }

    fn void_with_param(&self, _value: i64) -> Result<()> {
        Ok(())
    }

    fn inspect_point(&self, point: Point) -> Result<String> {
        Ok(format!(
            "Point({}, {})",
            python_float_repr(point.x),
            python_float_repr(point.y)
        ))
    }

    fn pack_nested_containers(
        &self,
        statuses: Vec<Status>,
        points: Vec<Point>,
        status_by_name: BTreeMap<String, Status>,
    ) -> Result<NestedContainers> {
        // pyarrow's `RecordBatch.from_pydict({"value": [1, 2]})`: a nullable int64 field.
        let tagged_batch = RecordBatch::try_from_iter_with_nullable([(
            "value",
            Arc::new(Int64Array::from(vec![1_i64, 2])) as ArrayRef,
            true,
        )])?;
        Ok(NestedContainers {
            frozen_statuses: statuses.iter().copied().collect::<BTreeSet<_>>(),
            tagged_status: statuses.first().copied(),
            tagged_point: points.first().copied(),
            tagged_batch: Some(tagged_batch),
            statuses,
            points,
            status_by_name,
        })
    }

    fn add_floats(&self, a: f64, b: f64) -> Result<f64> {
        Ok(a + b)
    }

    fn concatenate(&self, prefix: String, suffix: String, separator: String) -> Result<String> {
        Ok(format!("{prefix}{separator}{suffix}"))
    }

    fn with_defaults(
        &self,
        required: i64,
        optional_str: String,
        optional_int: i64,
    ) -> Result<String> {
        Ok(format!(
            "required={required}, optional_str={optional_str}, optional_int={optional_int}"
        ))
    }

    fn raise_value_error(&self, message: String) -> Result<String> {
        Err(RpcError::value_error(message).into())
    }

    fn raise_runtime_error(&self, message: String) -> Result<String> {
        Err(RpcError::runtime_error(message).into())
    }

    fn raise_type_error(&self, message: String) -> Result<String> {
        Err(RpcError::type_error(message).into())
    }

    fn echo_with_info_log(&self, ctx: &CallContext, value: String) -> Result<String> {
        log_level_echo(ctx, LogLevel::Info, &value);
        Ok(value)
    }

    fn echo_with_multi_logs(&self, ctx: &CallContext, value: String) -> Result<String> {
        for level in [LogLevel::Debug, LogLevel::Info, LogLevel::Warn] {
            log_level_echo(ctx, level, &value);
        }
        Ok(value)
    }

    fn echo_with_log_extras(&self, ctx: &CallContext, value: String) -> Result<String> {
        let mut extra = serde_json::Map::new();
        extra.insert("source".to_owned(), "conformance".into());
        extra.insert("detail".to_owned(), value.clone().into());
        ctx.log_with_extra(LogLevel::Info, format!("info: {value}"), extra);
        Ok(value)
    }

    fn echo_with_all_log_levels(&self, ctx: &CallContext, value: String) -> Result<String> {
        for level in [
            LogLevel::Trace,
            LogLevel::Debug,
            LogLevel::Info,
            LogLevel::Warn,
            LogLevel::Error,
        ] {
            log_level_echo(ctx, level, &value);
        }
        Ok(value)
    }

    fn produce_n(&self, count: i64) -> Result<Producer<producers::Counter>> {
        Ok(Producer::new(producers::Counter::new(count)))
    }

    fn produce_tick_metadata(&self, count: i64) -> Result<Producer<producers::TickMetadata>> {
        Ok(Producer::new(producers::TickMetadata::new(count)))
    }

    fn produce_empty(&self) -> Result<Producer<producers::Empty>> {
        Ok(Producer::new(producers::Empty))
    }

    fn produce_single(&self) -> Result<Producer<producers::OneBatch>> {
        Ok(Producer::new(producers::OneBatch::new(1)))
    }

    fn produce_large_batches(
        &self,
        rows_per_batch: i64,
        batch_count: i64,
    ) -> Result<Producer<producers::LargeBatches>> {
        Ok(Producer::new(producers::LargeBatches::new(
            rows_per_batch,
            batch_count,
        )))
    }

    fn produce_annotated_batches(
        &self,
        count: i64,
        rows_per_batch: i64,
    ) -> Result<Producer<producers::Annotated>> {
        Ok(Producer::new(producers::Annotated::new(
            count,
            rows_per_batch,
        )))
    }

    fn produce_with_logs(&self, count: i64) -> Result<Producer<producers::Logging>> {
        Ok(Producer::new(producers::Logging::new(count)))
    }

    fn produce_error_mid_stream(
        &self,
        emit_before_error: i64,
    ) -> Result<Producer<producers::ErrorAfter>> {
        Ok(Producer::new(producers::ErrorAfter::new(emit_before_error)))
    }

    fn produce_error_on_init(&self) -> Result<Producer<producers::Counter>> {
        Err(RpcError::runtime_error("intentional init error").into())
    }

    fn produce_oversized_batch(
        &self,
        rows_per_batch: i64,
    ) -> Result<Producer<producers::OneBatch>> {
        Ok(Producer::new(producers::OneBatch::new(rows_per_batch)))
    }

    fn produce_with_header(
        &self,
        count: i64,
    ) -> Result<Producer<producers::Counter, ConformanceHeader>> {
        Ok(Producer::with_header(
            producers::Counter::new(count),
            ConformanceHeader::producing(count),
        ))
    }

    fn produce_with_header_and_logs(
        &self,
        ctx: &CallContext,
        count: i64,
    ) -> Result<Producer<producers::Counter, ConformanceHeader>> {
        ctx.log(LogLevel::Info, "stream init log");
        Ok(Producer::with_header(
            producers::Counter::new(count),
            ConformanceHeader::producing_with_logs(count),
        ))
    }

    fn exchange_scale(&self, factor: f64) -> Result<Exchange<exchanges::Scale>> {
        Ok(Exchange::new(exchanges::Scale::new(factor)))
    }

    fn exchange_accumulate(&self) -> Result<Exchange<exchanges::Accumulate>> {
        Ok(Exchange::new(exchanges::Accumulate::default()))
    }

    fn exchange_with_logs(&self) -> Result<Exchange<exchanges::Logging>> {
        Ok(Exchange::new(exchanges::Logging))
    }

    fn exchange_error_on_nth(&self, fail_on: i64) -> Result<Exchange<exchanges::FailOnNth>> {
        Ok(Exchange::new(exchanges::FailOnNth::new(fail_on)))
    }

    fn exchange_zero_columns(&self) -> Result<Exchange<exchanges::ZeroColumns>> {
        Ok(Exchange::new(exchanges::ZeroColumns))
    }

    fn exchange_input_metadata(&self) -> Result<Exchange<exchanges::InputMetadata>> {
        Ok(Exchange::new(exchanges::InputMetadata))
    }

    fn exchange_error_on_init(&self) -> Result<Exchange<exchanges::Scale>> {
        Err(RpcError::runtime_error("intentional exchange init error").into())
    }

    fn exchange_oversized(&self, rows_per_batch: i64) -> Result<Exchange<exchanges::Oversized>> {
        Ok(Exchange::new(exchanges::Oversized::new(rows_per_batch)))
    }

    fn exchange_with_header(
        &self,
        factor: f64,
    ) -> Result<Exchange<exchanges::Scale, ConformanceHeader>> {
        Ok(Exchange::with_header(
            exchanges::Scale::new(factor),
            ConformanceHeader::scaling(factor),
        ))
    }

    fn cancellable_producer(&self) -> Result<Producer<producers::Cancellable>> {
        Ok(Producer::new(producers::Cancellable::new(
            self.probe.clone(),
        )))
    }

    fn cancellable_exchange(&self) -> Result<Exchange<exchanges::Cancellable>> {
        Ok(Exchange::new(exchanges::Cancellable::new(
            self.probe.clone(),
        )))
    }

    fn cancel_probe_counters(&self) -> Result<Vec<i64>> {
        Ok(self.probe.snapshot().to_vec())
    }

    fn reset_cancel_probe(&self) -> Result<()> {
        self.probe.reset();
        Ok(())
    }

    fn produce_with_rich_header(
        &self,
        seed: i64,
        count: i64,
    ) -> Result<Producer<producers::Counter, RichHeader>> {
        Ok(Producer::with_header(
            producers::Counter::new(count),
            RichHeader::from_seed(seed)?,
        ))
    }

    fn produce_dynamic_schema(
        &self,
        seed: i64,
        count: i64,
        include_strings: bool,
        include_floats: bool,
    ) -> Result<Producer<producers::Dynamic, RichHeader>> {
        Ok(Producer::with_header(
            producers::Dynamic::new(count, include_strings, include_floats),
            RichHeader::from_seed(seed)?,
        ))
    }

    fn exchange_cast_compatible(&self) -> Result<Exchange<exchanges::Scale>> {
        Ok(Exchange::new(exchanges::Scale::new(1.0)))
    }

    fn exchange_with_rich_header(
        &self,
        seed: i64,
        factor: f64,
    ) -> Result<Exchange<exchanges::Scale, RichHeader>> {
        Ok(Exchange::with_header(
            exchanges::Scale::new(factor),
            RichHeader::from_seed(seed)?,
        ))
    }

    fn open_counter(&self, ctx: &CallContext, initial: i64) -> Result<i64> {
        ctx.open_session(producers::StickyCounter::new(initial), None)?;
        Ok(initial)
    }

    fn increment_counter(&self, ctx: &CallContext, by: i64) -> Result<i64> {
        let counter = ctx
            .session::<producers::StickyCounter>()
            .ok_or_else(|| RpcError::runtime_error(NO_STICKY_COUNTER))?;
        Ok(counter.add(by))
    }

    fn close_counter(&self, ctx: &CallContext) -> Result<i64> {
        let counter = ctx
            .session::<producers::StickyCounter>()
            .ok_or_else(|| RpcError::runtime_error(NO_STICKY_COUNTER))?;
        let last = counter.get();
        ctx.close_session()?;
        Ok(last)
    }

    fn stream_session_counter(&self, count: i64) -> Result<Producer<producers::SessionCounter>> {
        Ok(Producer::new(producers::SessionCounter::new(count)))
    }

    fn exchange_session_counter(&self) -> Result<Exchange<exchanges::SessionCounter>> {
        Ok(Exchange::new(exchanges::SessionCounter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_point_prints_python_floats() -> Result<()> {
        let service = ConformanceImpl::new();
        let text = service.inspect_point(Point { x: 1.5, y: 2.0 })?;
        assert_eq!(text, "Point(1.5, 2.0)");
        Ok(())
    }

    #[test]
    fn pack_nested_containers_tags_first_elements() -> Result<()> {
        let service = ConformanceImpl::new();
        let statuses = vec![Status::Active, Status::Pending, Status::Active];
        let packed = service.pack_nested_containers(statuses, vec![], BTreeMap::new())?;
        assert_eq!(packed.tagged_status, Some(Status::Active));
        assert_eq!(packed.tagged_point, None);
        assert_eq!(packed.frozen_statuses.len(), 2);
        assert_eq!(packed.tagged_batch.map(|b| b.num_rows()), Some(2));
        Ok(())
    }

    #[test]
    fn oversized_unary_refuses_negative_sizes() {
        let service = ConformanceImpl::new();
        assert!(service.oversized_unary(-1).is_err());
        assert!(matches!(service.oversized_unary(3), Ok(Bytes(b)) if b == vec![0, 0, 0]));
    }
}
