//! The core mapping traits.

use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, SchemaRef};

use crate::Result;

/// A Rust type that maps to one Arrow column type.
///
/// Nullability is carried by `Option<T>`; every other implementation is non-null and
/// reports a null slot as `Ok(None)` from [`ArrowValue::from_array`] so the caller can
/// decide whether a null is allowed.
pub trait ArrowValue: Sized + Send + 'static {
    /// Whether a field holding this type is nullable (`true` only for `Option<T>`).
    const NULLABLE: bool = false;

    /// The Arrow type of a column of this value when nested (inside a list, map or struct).
    fn data_type() -> DataType;

    /// Builds a column from `items`; `None` becomes a null slot.
    ///
    /// # Errors
    /// Fails when a value cannot be represented (for example an out-of-range decimal).
    fn to_array(items: Vec<Option<Self>>) -> Result<ArrayRef>;

    /// Reads row `index` of `array`; `Ok(None)` when the slot is null.
    ///
    /// # Errors
    /// Fails with [`crate::Error::Type`] when `array` does not have the expected type or the
    /// value is not valid for this Rust type. Never panics, whatever the array holds.
    fn from_array(array: &dyn Array, index: usize) -> Result<Option<Self>>;

    /// The Arrow type when this value is a whole method parameter, result or header field.
    /// Equal to [`ArrowValue::data_type`] except for records, which travel as a nested IPC
    /// stream in a `binary` column at the top level (the reference's dataclass form).
    fn top_level_data_type() -> DataType {
        Self::data_type()
    }

    /// Builds a top-level column (see [`ArrowValue::top_level_data_type`]).
    ///
    /// # Errors
    /// As [`ArrowValue::to_array`].
    fn to_top_level_array(items: Vec<Option<Self>>) -> Result<ArrayRef> {
        Self::to_array(items)
    }

    /// Reads a top-level value (see [`ArrowValue::top_level_data_type`]).
    ///
    /// # Errors
    /// As [`ArrowValue::from_array`].
    fn from_top_level_array(array: &dyn Array, index: usize) -> Result<Option<Self>> {
        Self::from_array(array, index)
    }
}

/// A record (struct) type: a fixed list of named, typed fields.
///
/// Derive it with `#[derive(vgi_rpc::ArrowRecord)]`. A record is used as a stream header,
/// as the rows of a producer's output, as a struct column when nested, and as a nested IPC
/// stream in a `binary` column when it is a whole parameter or result.
pub trait ArrowRecord: Sized + Send + 'static {
    /// The record's schema: one field per struct field, in declaration order.
    fn schema() -> SchemaRef;

    /// Builds a batch with one row per record.
    ///
    /// # Errors
    /// Fails when a field value cannot be represented.
    fn to_batch(rows: Vec<Self>) -> Result<RecordBatch>;

    /// Reads row `index` of `batch` (matched by field name).
    ///
    /// # Errors
    /// Fails with [`crate::Error::Type`] when a field is missing, has the wrong type, or is
    /// null where the record does not allow it.
    fn from_batch(batch: &RecordBatch, index: usize) -> Result<Self>;
}

/// Reads whole batches as records: `batch.rows::<T>()`.
///
/// ```
/// use vgi_rpc::prelude::*;
/// use vgi_rpc::schema::RecordRows;
///
/// #[derive(ArrowRecord, Debug, PartialEq)]
/// struct Tick {
///     value: i64,
/// }
///
/// let batch = Tick::to_batch(vec![Tick { value: 1 }, Tick { value: 2 }])?;
/// assert_eq!(batch.rows::<Tick>()?, [Tick { value: 1 }, Tick { value: 2 }]);
/// # Ok::<(), vgi_rpc::Error>(())
/// ```
pub trait RecordRows {
    /// Every row as a record of type `T`, in order.
    ///
    /// # Errors
    /// As [`ArrowRecord::from_batch`].
    fn rows<T: ArrowRecord>(&self) -> Result<Vec<T>>;
}

impl RecordRows for RecordBatch {
    fn rows<T: ArrowRecord>(&self) -> Result<Vec<T>> {
        (0..self.num_rows())
            .map(|row| T::from_batch(self, row))
            .collect()
    }
}

/// A fieldless enum carried as `dictionary<int16, utf8>` holding the member name.
///
/// Derive it with `#[derive(vgi_rpc::ArrowEnum)]`.
pub trait ArrowEnum: Sized + Copy + Send + 'static {
    /// Member names, in declaration order (this is the dictionary the server writes).
    const NAMES: &'static [&'static str];

    /// The member's name.
    fn name(&self) -> &'static str;

    /// The member with this name, if any.
    fn from_name(name: &str) -> Option<Self>;
}
