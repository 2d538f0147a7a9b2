//! Building the `int64` output batches the stream states emit, without aborting the
//! process on sizes a peer chose: allocation is fallible and arithmetic is checked, as
//! Python's integers would overflow only when converted to `int64`.

use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use vgi_rpc::prelude::*;

use crate::types::CounterRow;

/// `OverflowError` for a value past `int64`.
pub(crate) fn overflow(what: &str) -> Error {
    RpcError::new("OverflowError", format!("{what} does not fit int64")).into()
}

/// Allocates an `int64` column of `len` values, failing instead of aborting when the peer
/// asked for more memory than the process can get.
pub(crate) fn int64_column(len: usize, value: impl Fn(i64) -> Option<i64>) -> Result<ArrayRef> {
    let mut values = Vec::new();
    values.try_reserve_exact(len).map_err(|_| {
        Error::from(RpcError::new(
            "MemoryError",
            format!("cannot allocate a batch of {len} rows"),
        ))
    })?;
    for row in 0..len {
        let row = i64::try_from(row).map_err(|_| overflow("row index"))?;
        values.push(value(row).ok_or_else(|| overflow("value"))?);
    }
    Ok(Arc::new(Int64Array::from(values)))
}

/// A `{index, value}` batch of `rows` rows (none when negative, like Python's `range`)
/// with indices from `start` and values ten times the index.
///
/// # Errors
/// `OverflowError` past `int64`, `MemoryError` when the batch cannot be allocated.
pub(crate) fn counter_batch(start: i64, rows: i64) -> Result<RecordBatch> {
    let len = usize::try_from(rows.max(0)).map_err(|_| overflow("row count"))?;
    let index = int64_column(len, |r| start.checked_add(r))?;
    let value = int64_column(len, |r| start.checked_add(r)?.checked_mul(10))?;
    Ok(RecordBatch::try_new(
        CounterRow::schema(),
        vec![index, value],
    )?)
}

/// One `{index: i, value: 10 i}` row.
pub(crate) fn counter_row(index: i64) -> Result<CounterRow> {
    let value = index.checked_mul(10).ok_or_else(|| overflow("value"))?;
    Ok(CounterRow {
        index: Some(index),
        value: Some(value),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;

    #[test]
    fn counter_batch_has_running_index_and_tenfold_values() -> Result<()> {
        let batch = counter_batch(4, 3)?;
        assert_eq!(batch.schema(), CounterRow::schema());
        let index = batch.column(0).as_primitive::<Int64Type>();
        let value = batch.column(1).as_primitive::<Int64Type>();
        assert_eq!(index.values().to_vec(), vec![4, 5, 6]);
        assert_eq!(value.values().to_vec(), vec![40, 50, 60]);
        Ok(())
    }

    #[test]
    fn counter_batch_treats_negative_rows_as_empty() -> Result<()> {
        assert_eq!(counter_batch(0, -5)?.num_rows(), 0);
        Ok(())
    }

    #[test]
    fn counter_batch_reports_overflow_and_huge_sizes() {
        assert!(counter_batch(i64::MAX, 1).is_err());
        assert!(counter_batch(0, i64::MAX).is_err());
    }
}
