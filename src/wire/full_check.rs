//! [`Validation::Full`](super::Validation::Full) for flat batches, faster than arrow's.
//!
//! A received batch is checked completely before anyone reads it. For string columns
//! arrow's check walks the offsets one by one through a general closure (with
//! conversions and range checks on each), which was about a third of a client's CPU
//! when it consumes a stream of string-heavy batches. For batches whose columns are all
//! flat (primitive, boolean, temporal, decimal, fixed-size binary, binary and utf8, plain
//! or large) the decoder skips arrow's checks and this module runs the same ones:
//! column lengths and no nulls in a non-nullable column (what `RecordBatch::try_new`
//! checks), arrow's own layout and null-count checks ([`ArrayData::validate`],
//! [`ArrayData::validate_nulls`]) and value checks ([`ArrayData::validate_values`]),
//! except for utf8 columns, whose offsets and contents are checked here in tight loops:
//! offsets non-negative, non-decreasing and within the values buffer, the bytes they span
//! valid UTF-8, and every offset on a character boundary. Any other batch (nested,
//! dictionary, view or union columns) is decoded with arrow's checks as before.

use arrow_array::RecordBatch;
use arrow_buffer::ArrowNativeType;
use arrow_data::ArrayData;
use arrow_schema::{DataType, Schema};

use crate::{Error, Result};

/// Whether every column of `schema` is flat (checked by [`check`]).
pub(super) fn applies(schema: &Schema) -> bool {
    schema.fields().iter().all(|f| {
        let dt = f.data_type();
        dt.is_primitive()
            || matches!(
                dt,
                DataType::Null
                    | DataType::Boolean
                    | DataType::Utf8
                    | DataType::LargeUtf8
                    | DataType::Binary
                    | DataType::LargeBinary
                    | DataType::FixedSizeBinary(_)
            )
    })
}

/// Checks a flat batch decoded without arrow's checks as fully as arrow would have.
pub(super) fn check(batch: &RecordBatch) -> Result<()> {
    let schema = batch.schema();
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        if column.len() != batch.num_rows() {
            return Err(invalid(format!(
                "column of {} rows in a batch of {}",
                column.len(),
                batch.num_rows()
            )));
        }
        let data = column.to_data();
        data.validate().map_err(arrow_invalid)?;
        data.validate_nulls().map_err(arrow_invalid)?;
        // As `RecordBatch::try_new` does for arrow's own checked path.
        if !field.is_nullable() && column.null_count() > 0 {
            return Err(invalid(format!(
                "Column '{}' is declared as non-nullable but contains null values",
                field.name()
            )));
        }
        match data.data_type() {
            DataType::Utf8 => utf8::<i32>(&data)?,
            DataType::LargeUtf8 => utf8::<i64>(&data)?,
            _ => data.validate_values().map_err(arrow_invalid)?,
        }
    }
    Ok(())
}

/// Offsets and contents of a utf8 array whose layout was checked
/// ([`ArrayData::validate`]: the offsets buffer holds `len + 1` entries past the
/// array's offset).
///
/// The two scans (offsets in order, bytes ASCII) are compiled a second time for AVX2
/// (x86-64 cores of the last decade), twice as wide as the baseline SSE2 build, and
/// picked at run time: the offsets scan took half the time it did (a sixth of the check
/// instead of a third, a client consuming 3 MB batches); the ASCII scan over a body
/// that just landed waits on memory either way.
fn utf8<O: ArrowNativeType>(data: &ArrayData) -> Result<()> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        return utf8_avx2::<O>(data);
    }
    utf8_scans::<O>(data)
}

/// [`utf8_scans`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
fn utf8_avx2<O: ArrowNativeType>(data: &ArrayData) -> Result<()> {
    #[target_feature(enable = "avx2")]
    fn scans<O: ArrowNativeType>(data: &ArrayData) -> Result<()> {
        utf8_scans::<O>(data)
    }
    // SAFETY: only called where the CPU was found to have AVX2 (`utf8`).
    unsafe { scans::<O>(data) }
}

/// The checks of [`utf8`], inlined into each build of it.
#[inline(always)]
fn utf8_scans<O: ArrowNativeType>(data: &ArrayData) -> Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    let offsets = data
        .buffer::<O>(0)
        .get(..=data.len())
        .ok_or_else(|| invalid("utf8 offsets buffer too short".into()))?;
    let values = data.buffers()[1].as_slice();
    // One branch-free pass in the offsets' own type, which the compiler vectorizes:
    // non-decreasing from a non-negative first offset means none is negative (a pass
    // through `as_usize` and a second one for the signs took 2.6x as long).
    let decreasing = offsets[..data.len()]
        .iter()
        .zip(&offsets[1..])
        .fold(false, |bad, (a, b)| bad | (a > b));
    let negative = offsets[0].to_i64().is_none_or(|o| o < 0);
    let first = offsets[0].as_usize();
    let last = offsets[data.len()].as_usize();
    if negative || decreasing || first > last || last > values.len() {
        return Err(invalid(
            "utf8 offsets are negative, decreasing or past the values buffer".into(),
        ));
    }
    let span = &values[first..last];
    if ascii(span) {
        // ASCII is UTF-8, and every offset into it is on a character boundary.
        return Ok(());
    }
    std::str::from_utf8(span)
        .map_err(|e| invalid(format!("invalid UTF-8 in a utf8 column: {e}")))?;
    // Every offset lies in [first, last] now; one inside the values must not point at
    // a continuation byte (0b10xx_xxxx).
    let split = offsets.iter().fold(false, |bad, o| {
        let o = o.as_usize();
        bad | (o < last && (values[o] as i8) < -0x40)
    });
    if split {
        return Err(invalid(
            "a utf8 offset splits a multi-byte character".into(),
        ));
    }
    Ok(())
}

/// Whether every byte is ASCII: one branch-free pass the compiler vectorizes (the
/// standard library's `is_ascii` stops to test every 64 bytes, and its SIMD form is
/// fixed at the baseline's SSE2).
#[inline(always)]
fn ascii(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |seen, &b| seen | b) < 0x80
}

fn invalid(message: String) -> Error {
    Error::InvalidMessage(format!("invalid record batch: {message}"))
}

fn arrow_invalid(e: arrow_schema::ArrowError) -> Error {
    invalid(e.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, BinaryArray, Int64Array, RecordBatch, StringArray};

    use crate::Error;
    use crate::wire::{decode_stream, encode_stream};

    /// An IPC stream of `batch` with the first occurrence of `from` replaced by `to`.
    fn patched(batch: &RecordBatch, from: &[u8], to: &[u8]) -> Vec<u8> {
        let mut bytes = encode_stream(&batch.schema(), std::slice::from_ref(batch)).unwrap();
        let at = bytes.windows(from.len()).position(|w| w == from).unwrap();
        bytes[at..at + to.len()].copy_from_slice(to);
        bytes
    }

    fn offsets(o: [i32; 3]) -> Vec<u8> {
        o.map(i32::to_le_bytes).concat()
    }

    fn strings(values: Vec<&str>) -> RecordBatch {
        let ids: ArrayRef = Arc::new(Int64Array::from(vec![1, 2]));
        let s: ArrayRef = Arc::new(StringArray::from(values));
        RecordBatch::try_from_iter([("id", ids), ("s", s)]).unwrap()
    }

    fn rejected(bytes: &[u8]) -> bool {
        matches!(decode_stream(bytes), Err(Error::InvalidMessage(_)))
    }

    #[test]
    fn valid_flat_batches_pass_ascii_or_not() {
        for values in [vec!["ab", "cd"], vec!["é", "ab"], vec!["", "日本"]] {
            let batch = strings(values);
            let bytes = encode_stream(&batch.schema(), std::slice::from_ref(&batch)).unwrap();
            let (_, batches) = decode_stream(&bytes).unwrap();
            assert_eq!(batches, [batch]);
        }
    }

    #[test]
    fn offsets_and_contents_are_checked_as_arrow_does() {
        // "é" is two bytes: an offset between them splits the character.
        let batch = strings(vec!["é", "ab"]);
        assert!(rejected(&patched(
            &batch,
            &offsets([0, 2, 4]),
            &offsets([0, 1, 4])
        )));
        // Decreasing, negative and out-of-range offsets.
        let batch = strings(vec!["ab", "cd"]);
        for forged in [[0, 3, 2], [-1, 2, 4], [0, -1, 4], [-4, -2, 4], [0, 2, 4096]] {
            let bytes = patched(&batch, &offsets([0, 2, 4]), &offsets(forged));
            assert!(rejected(&bytes), "{forged:?}");
        }
        // Invalid UTF-8.
        assert!(rejected(&patched(
            &batch,
            b"abcd",
            &[b'a', 0xff, b'c', b'd']
        )));
        // A null in a column declared non-nullable.
        let declared = arrow_schema::Schema::new(vec![arrow_schema::Field::new(
            "x",
            arrow_schema::DataType::Int64,
            false,
        )]);
        let nulls: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None]));
        let loose = RecordBatch::try_from_iter([("x", nulls)]).unwrap();
        let mut bytes = Vec::new();
        let mut enc = crate::wire::StreamEncoder::new();
        enc.schema(&mut bytes, &declared);
        enc.batch(&mut bytes, &loose, &crate::wire::Metadata::new())
            .unwrap();
        enc.eos(&mut bytes);
        assert!(rejected(&bytes));
        // Binary columns keep arrow's own offset checks.
        let bin: ArrayRef = Arc::new(BinaryArray::from(vec![&b"ab"[..], b"cd"]));
        let batch = RecordBatch::try_from_iter([("b", bin)]).unwrap();
        assert!(rejected(&patched(
            &batch,
            &offsets([0, 2, 4]),
            &offsets([0, 2, 4096])
        )));
    }
}
