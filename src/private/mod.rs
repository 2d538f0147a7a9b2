//! Support code for macro-generated items. Not a public API: names and signatures here
//! change without notice. Generated code reaches the runtime only through this module so
//! the rest of the crate stays free to evolve.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

mod client;
mod resume;

pub use arrow_array;
pub use arrow_schema;
pub use serde_json;

/// Benchmark access to the request encoder (not an API).
pub use crate::client::request::RequestEncoder;
pub use client::{ClientCore, Request, UnaryOutput, default_arg};
pub use resume::{HeldStream, Resume, SavingStream};

use crate::schema::ArrowValue;
use crate::server::{MethodKind, Response};
use crate::stream::{Exchange, ExchangeState, Producer, ProducerState, StreamHeader};
use crate::{Error, Result};

/// The request field for parameter `name` of Rust type `T`, with an optional Arrow type
/// override.
pub fn param_field<T: ArrowValue>(name: &str, arrow: Option<DataType>) -> Field {
    Field::new(
        name,
        arrow.unwrap_or_else(T::top_level_data_type),
        T::NULLABLE,
    )
}

/// Decodes argument `index` (row 0) of a validated request batch.
///
/// # Errors
/// Fails with a `TypeError`-class error when the value is null but `T` is not an
/// `Option`, or cannot be represented as `T`.
pub fn arg<T: ArrowValue>(args: &RecordBatch, index: usize, arrow: Option<&DataType>) -> Result<T> {
    let column = args
        .columns()
        .get(index)
        .ok_or_else(|| Error::type_error(format!("missing argument column {index}")))?;
    if column.is_empty() {
        return Err(Error::type_error("request batch has no rows"));
    }
    let name = args.schema().field(index).name().clone();
    let natural = T::top_level_data_type();
    let decoded = match arrow {
        Some(dt) if *dt != natural && column.data_type() == dt => {
            let cast = arrow_cast::cast(column.as_ref(), &natural)?;
            T::from_top_level_array(cast.as_ref(), 0)?
        }
        _ => T::from_top_level_array(column.as_ref(), 0)?,
    };
    decoded.ok_or_else(|| Error::type_error(format!("parameter '{name}' must not be null")))
}

/// How a method's declared return type maps to the wire: unary value, void, or a stream.
pub trait MethodOutput: Sized {
    /// Unary, producer or exchange.
    const KIND: MethodKind;

    /// The unary result schema (`result: T`), `None` for void and streams.
    fn result_schema() -> Option<SchemaRef>;

    /// The stream header schema, if any.
    fn header_schema() -> Option<SchemaRef>;

    /// Turns the handler's return value into a server response.
    ///
    /// # Errors
    /// Fails when the value cannot be encoded.
    fn into_response(self) -> Result<Response>;
}

impl<T: ArrowValue> MethodOutput for T {
    const KIND: MethodKind = MethodKind::Unary;

    fn result_schema() -> Option<SchemaRef> {
        Some(Arc::new(Schema::new(vec![Field::new(
            "result",
            T::top_level_data_type(),
            T::NULLABLE,
        )])))
    }

    fn header_schema() -> Option<SchemaRef> {
        None
    }

    fn into_response(self) -> Result<Response> {
        let schema = Self::result_schema().ok_or_else(|| Error::protocol("no result schema"))?;
        let column: ArrayRef = T::to_top_level_array(vec![Some(self)])?;
        let batch = RecordBatch::try_new(schema, vec![column])?;
        Ok(Response::Unary(Some(batch)))
    }
}

impl MethodOutput for () {
    const KIND: MethodKind = MethodKind::Unary;

    fn result_schema() -> Option<SchemaRef> {
        None
    }

    fn header_schema() -> Option<SchemaRef> {
        None
    }

    fn into_response(self) -> Result<Response> {
        Ok(Response::Unary(None))
    }
}

impl<S: ProducerState, H: StreamHeader> MethodOutput for Producer<S, H> {
    const KIND: MethodKind = MethodKind::Producer;

    fn result_schema() -> Option<SchemaRef> {
        None
    }

    fn header_schema() -> Option<SchemaRef> {
        H::header_schema()
    }

    fn into_response(self) -> Result<Response> {
        let header = self.header.into_header_batch()?;
        Ok(Response::Producer(Box::new(self.state), header))
    }
}

impl<S: ExchangeState, H: StreamHeader> MethodOutput for Exchange<S, H> {
    const KIND: MethodKind = MethodKind::Exchange;

    fn result_schema() -> Option<SchemaRef> {
        None
    }

    fn header_schema() -> Option<SchemaRef> {
        H::header_schema()
    }

    fn into_response(self) -> Result<Response> {
        let header = self.header.into_header_batch()?;
        Ok(Response::Exchange(Box::new(self.state), header))
    }
}

/// Converts a handler's `Result<T>` into a response.
///
/// # Errors
/// The handler's own error, or an encoding error.
pub fn respond<T: MethodOutput>(out: Result<T>) -> Result<Response> {
    out?.into_response()
}

/// An empty batch on `schema` with `rows` rows (used for zero-column records).
///
/// # Errors
/// Fails when the schema has columns.
pub fn empty_batch(schema: SchemaRef, rows: usize) -> Result<RecordBatch> {
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    Ok(RecordBatch::try_new_with_options(schema, vec![], &options)?)
}

/// Reads field `name` of a record batch row as `T`.
///
/// # Errors
/// Fails when the field is missing, has the wrong type, or is null for a non-`Option`.
pub fn record_field<T: ArrowValue>(batch: &RecordBatch, name: &str, index: usize) -> Result<T> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| Error::type_error(format!("record is missing field '{name}'")))?;
    read_field(column.as_ref(), name, index)
}

/// Reads one value of a record field from its column.
///
/// # Errors
/// As [`record_field`].
pub fn read_field<T: ArrowValue>(column: &dyn Array, name: &str, index: usize) -> Result<T> {
    T::from_array(column, index)?
        .ok_or_else(|| Error::type_error(format!("field '{name}' must not be null")))
}
