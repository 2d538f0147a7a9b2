//! Exchange-input coercion: the client picks its input schema; the state declares the one
//! it wants. Columns are matched by name (order may differ) and cast when Arrow can cast
//! them losslessly enough (int32/int64/float32 -> float64, ...); a different name set is
//! a `TypeError`, as in the reference.

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::{Result, RpcError};

/// Coerces `batch` to `target` (same name set; reorder by name; cast compatible types).
///
/// # Errors
/// `TypeError: Input schema mismatch ...` when names differ or a column cannot be cast.
pub fn coerce_batch(batch: &RecordBatch, target: &SchemaRef) -> Result<RecordBatch> {
    let schema = batch.schema();
    if schema.fields() == target.fields() {
        return Ok(batch.clone());
    }
    let mismatch = || {
        RpcError::type_error(format!(
            "Input schema mismatch: expected {}, got {}",
            describe(target),
            describe(&schema)
        ))
    };
    if schema.fields().len() != target.fields().len() {
        return Err(mismatch().into());
    }
    let mut columns = Vec::with_capacity(target.fields().len());
    for field in target.fields() {
        let (index, _) = schema.column_with_name(field.name()).ok_or_else(mismatch)?;
        let column = batch.column(index);
        if column.data_type() == field.data_type() {
            columns.push(column.clone());
        } else if arrow_cast::can_cast_types(column.data_type(), field.data_type()) {
            columns.push(arrow_cast::cast(column, field.data_type()).map_err(|_| mismatch())?);
        } else {
            return Err(mismatch().into());
        }
    }
    let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(target.clone(), columns, &options)
        .map_err(|_| mismatch().into())
}

fn describe(schema: &SchemaRef) -> String {
    let fields: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), f.data_type()))
        .collect();
    format!("[{}]", fields.join(", "))
}
