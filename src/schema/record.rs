//! Records as values: the glue between [`ArrowRecord`] and [`ArrowValue`](crate::ArrowValue).
//!
//! A record has two Arrow forms:
//! - **nested** (inside a list, map or another record): a `struct<...>` column whose children
//!   are the record's fields, in [`ArrowRecord::schema`] order;
//! - **top level** (a whole parameter, result or header field): a `binary` column where each
//!   non-null row is a complete IPC stream holding the record's schema, one 1-row batch and
//!   EOS (the reference's "dataclass as a top-level parameter").
//!
//! # For the `#[derive(ArrowRecord)]` author
//!
//! The derive implements only [`ArrowRecord`] (`schema`, `to_batch`, `from_batch`; reading
//! fields by name). Null rows need no special support: null struct slots are filled by
//! `take` with null indices from the batch of non-null rows. Then `ArrowValue` for a
//! non-generic record is one line:
//!
//! ```ignore
//! ::vgi_rpc::__impl_record_value!(Point);
//! ```
//!
//! For a generic record, write the impl with the same five helpers the macro uses:
//!
//! ```ignore
//! impl<T: ...> ::vgi_rpc::ArrowValue for Pair<T> {
//!     fn data_type() -> DataType { ::vgi_rpc::schema::record_struct_type::<Self>() }
//!     fn to_array(items: Vec<Option<Self>>) -> Result<ArrayRef> {
//!         ::vgi_rpc::schema::record_to_struct_array(items)
//!     }
//!     fn from_array(array: &dyn Array, index: usize) -> Result<Option<Self>> {
//!         ::vgi_rpc::schema::record_from_struct_array(array, index)
//!     }
//!     fn top_level_data_type() -> DataType { DataType::Binary }
//!     fn to_top_level_array(items: Vec<Option<Self>>) -> Result<ArrayRef> {
//!         ::vgi_rpc::schema::record_to_ipc_array(items)
//!     }
//!     fn from_top_level_array(array: &dyn Array, index: usize) -> Result<Option<Self>> {
//!         ::vgi_rpc::schema::record_from_ipc_array(array, index)
//!     }
//! }
//! ```
//!
//! `from_batch` is called on a 1-row view whose schema is the peer's struct fields (which
//! may include unknown fields or a different order), so it must read by name.

use std::sync::Arc;

use arrow_array::types::BinaryType;
use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchOptions, StructArray, UInt64Array};
use arrow_schema::{DataType, Schema};

use super::ArrowRecord;
use super::embedded::{binary_slot, decode_single_batch};
use super::util::{byte_array, null_buffer, slot};
use crate::{Error, Result, wire};

/// The nested Arrow type of record `T`: `struct<...>` of its schema's fields.
pub fn record_struct_type<T: ArrowRecord>() -> DataType {
    DataType::Struct(T::schema().fields().clone())
}

/// Calls `T::to_batch` and checks it produced `rows` rows.
fn batch_of<T: ArrowRecord>(rows: Vec<T>) -> Result<RecordBatch> {
    let expected = rows.len();
    let batch = T::to_batch(rows)?;
    if batch.num_rows() != expected {
        return Err(Error::type_error(format!(
            "record to_batch produced {} rows for {expected} records",
            batch.num_rows()
        )));
    }
    Ok(batch)
}

/// Builds a struct column from records; `None` becomes a null struct slot.
///
/// # Errors
/// Fails when a field value cannot be represented, or when `T::to_batch` does not produce
/// columns of `T::schema()`'s types.
pub fn record_to_struct_array<T: ArrowRecord>(items: Vec<Option<T>>) -> Result<ArrayRef> {
    let len = items.len();
    let validity: Vec<bool> = items.iter().map(Option::is_some).collect();
    let batch = batch_of(items.into_iter().flatten().collect())?;
    let fields = T::schema().fields().clone();
    let nulls = null_buffer(validity);
    let columns = match &nulls {
        None => batch.columns().to_vec(),
        Some(nulls) => {
            // Spread the non-null rows out to their positions; null indices give null
            // placeholders, which the struct's own null buffer masks.
            let mut next = 0u64;
            let indices: UInt64Array = nulls
                .iter()
                .map(|valid| {
                    valid.then(|| {
                        next += 1;
                        next - 1
                    })
                })
                .collect();
            batch
                .columns()
                .iter()
                .map(|c| arrow_select::take::take(c.as_ref(), &indices, None))
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    Ok(Arc::new(StructArray::try_new_with_length(
        fields, columns, nulls, len,
    )?))
}

/// Reads row `index` of a struct column as a record; `None` when the slot is null.
///
/// The record sees a 1-row batch of the struct's own fields (cheap slices, no copies).
///
/// # Errors
/// Fails when `array` is not a struct column, `index` is out of bounds, or `T::from_batch`
/// rejects the row.
pub fn record_from_struct_array<T: ArrowRecord>(
    array: &dyn Array,
    index: usize,
) -> Result<Option<T>> {
    let Some(s) = slot::<StructArray>(array, index, "struct")? else {
        return Ok(None);
    };
    let columns = s.columns().iter().map(|c| c.slice(index, 1)).collect();
    let schema = Arc::new(Schema::new(s.fields().clone()));
    let options = RecordBatchOptions::new().with_row_count(Some(1));
    let batch = RecordBatch::try_new_with_options(schema, columns, &options)
        .map_err(|e| Error::type_error(format!("invalid record row: {e}")))?;
    T::from_batch(&batch, 0).map(Some)
}

/// Builds the top-level form: a `binary` column where each non-null row is a complete IPC
/// stream (schema of `T`, one 1-row batch, EOS).
///
/// # Errors
/// Fails when a record cannot be encoded.
pub fn record_to_ipc_array<T: ArrowRecord>(items: Vec<Option<T>>) -> Result<ArrayRef> {
    let streams = items
        .into_iter()
        .map(|item| {
            item.map(|row| {
                let batch = batch_of(vec![row])?;
                wire::encode_stream(&T::schema(), std::slice::from_ref(&batch))
            })
            .transpose()
        })
        .collect::<Result<Vec<_>>>()?;
    byte_array::<BinaryType, _>(streams)
}

/// Reads row `index` of a top-level record column (see [`record_to_ipc_array`]); `None`
/// when the slot is null.
///
/// # Errors
/// Fails when the column is not `binary`, the bytes are not an IPC stream with exactly one
/// 1-row batch, or `T::from_batch` rejects it.
pub fn record_from_ipc_array<T: ArrowRecord>(array: &dyn Array, index: usize) -> Result<Option<T>> {
    let Some(bytes) = binary_slot(array, index)? else {
        return Ok(None);
    };
    let batch = decode_single_batch(bytes)?;
    if batch.num_rows() != 1 {
        return Err(Error::type_error(format!(
            "expected a 1-row record batch, got {} rows",
            batch.num_rows()
        )));
    }
    T::from_batch(&batch, 0).map(Some)
}

/// Implements `ArrowValue` for a non-generic `ArrowRecord` type: a struct when nested, a
/// nested IPC stream in a `binary` column at the top level. Used by
/// `#[derive(ArrowRecord)]`; see the `vgi_rpc::schema` record helpers.
#[doc(hidden)]
#[macro_export]
macro_rules! __impl_record_value {
    ($ty:ty) => {
        impl $crate::ArrowValue for $ty {
            fn data_type() -> $crate::private::arrow_schema::DataType {
                $crate::schema::record_struct_type::<Self>()
            }

            fn to_array(
                items: ::std::vec::Vec<::std::option::Option<Self>>,
            ) -> $crate::Result<$crate::private::arrow_array::ArrayRef> {
                $crate::schema::record_to_struct_array(items)
            }

            fn from_array(
                array: &dyn $crate::private::arrow_array::Array,
                index: usize,
            ) -> $crate::Result<::std::option::Option<Self>> {
                $crate::schema::record_from_struct_array(array, index)
            }

            fn top_level_data_type() -> $crate::private::arrow_schema::DataType {
                $crate::private::arrow_schema::DataType::Binary
            }

            fn to_top_level_array(
                items: ::std::vec::Vec<::std::option::Option<Self>>,
            ) -> $crate::Result<$crate::private::arrow_array::ArrayRef> {
                $crate::schema::record_to_ipc_array(items)
            }

            fn from_top_level_array(
                array: &dyn $crate::private::arrow_array::Array,
                index: usize,
            ) -> $crate::Result<::std::option::Option<Self>> {
                $crate::schema::record_from_ipc_array(array, index)
            }
        }
    };
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use arrow_array::{Float64Array, Int64Array};
    use arrow_schema::{Field, Fields};

    use super::*;
    use crate::ArrowValue;
    use crate::schema::test_support::round_trip;
    use crate::schema::test_support::{Point, Shape, p};

    #[test]
    fn types() {
        assert_eq!(
            Point::data_type(),
            DataType::Struct(Point::schema().fields().clone())
        );
        assert_eq!(Point::top_level_data_type(), DataType::Binary);
        assert_eq!(<Option<Point>>::top_level_data_type(), DataType::Binary);
        assert_eq!(
            crate::schema::type_token(&Point::data_type()).unwrap(),
            "struct<x:float64,y:float64>"
        );
    }

    #[test]
    fn struct_round_trip_with_null_rows() {
        round_trip(vec![
            Some(p(1.5, -2.0)),
            None,
            Some(p(0.0, f64::INFINITY)),
            None,
        ]);
        round_trip(vec![None::<Point>, None]);
        round_trip::<Point>(vec![]);
        round_trip(vec![
            Some(vec![p(1.0, 2.0), p(3.0, 4.0)]),
            None,
            Some(vec![]),
        ]);
        round_trip(vec![Some(vec![Some(p(1.0, 2.0)), None])]);
        let shape = |label: &str, corner, points| Shape {
            label: label.to_owned(),
            corner,
            points,
        };
        round_trip(vec![
            Some(shape("a", Some(p(1.0, 1.0)), vec![p(2.0, 2.0)])),
            None,
            Some(shape("b", None, vec![])),
            None,
            Some(shape("c", None, vec![p(0.0, 0.0), p(-1.0, -1.0)])),
        ]);
    }

    #[test]
    fn peer_struct_with_other_field_order_and_extras_is_read_by_name() {
        let fields = Fields::from(vec![
            Field::new("extra", DataType::Int64, true),
            Field::new("y", DataType::Float64, false),
            Field::new("x", DataType::Float64, false),
        ]);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![None, Some(1)])),
            Arc::new(Float64Array::from(vec![2.0, 4.0])),
            Arc::new(Float64Array::from(vec![1.0, 3.0])),
        ];
        let array = StructArray::try_new(fields, columns, None).unwrap();
        assert_eq!(Point::from_array(&array, 1).unwrap(), Some(p(3.0, 4.0)));
    }

    #[test]
    fn wrong_shapes_are_errors() {
        let missing_y = StructArray::try_new(
            Fields::from(vec![Field::new("x", DataType::Float64, false)]),
            vec![Arc::new(Float64Array::from(vec![1.0]))],
            None,
        )
        .unwrap();
        assert!(Point::from_array(&missing_y, 0).is_err());
        assert!(Point::from_array(&missing_y, 1).is_err());
        let ints = i64::to_array(vec![Some(1)]).unwrap();
        assert!(Point::from_array(ints.as_ref(), 0).is_err());
        assert!(Point::from_top_level_array(ints.as_ref(), 0).is_err());
        let garbage = crate::schema::Bytes::to_array(vec![Some(vec![0xff; 16].into())]).unwrap();
        assert!(Point::from_top_level_array(garbage.as_ref(), 0).is_err());
    }

    #[test]
    fn top_level_ipc_round_trip() {
        let items = vec![Some(p(1.5, -2.0)), None];
        let array = Point::to_top_level_array(items.clone()).unwrap();
        assert_eq!(array.data_type(), &DataType::Binary);
        let back: Vec<_> = (0..2)
            .map(|i| Point::from_top_level_array(array.as_ref(), i).unwrap())
            .collect();
        assert_eq!(back, items);
        let shapes = vec![Some(Shape {
            label: "s".into(),
            corner: None,
            points: vec![p(1.0, 2.0)],
        })];
        let array = Shape::to_top_level_array(shapes.clone()).unwrap();
        assert_eq!(
            Shape::from_top_level_array(array.as_ref(), 0).unwrap(),
            shapes[0]
        );
    }
}
