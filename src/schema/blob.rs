//! [`Blob`]: a byte string carried as `binary`, shared with the memory it arrived in.
//!
//! [`Bytes`](super::Bytes) owns a `Vec<u8>`, so reading one out of a received batch copies
//! it: for a 1 MiB argument that copy was 75 µs of the worker's time per call (`perf` of a
//! 1 MiB echo over a pipe, ~400 µs a call). A `Blob` is a slice of the Arrow buffer the
//! value already sits in, the received message's body, so a handler gets it without a
//! copy; a `Blob` returned alone in its column is that column's data buffer, so a large
//! answer goes out from the same memory (large batches are written from their arrays'
//! buffers). Same wire type as `Bytes`: only the Rust side differs.

use arrow_array::types::BinaryType;
use arrow_array::{Array, ArrayRef, BinaryArray};
use arrow_buffer::Buffer;
use arrow_schema::DataType;

use super::ArrowValue;
use super::util::{byte_array, slot};
use crate::{Error, Result};

/// Bytes carried as `binary`, held as an Arrow [`Buffer`]: read from a received batch
/// without copying, and sent without copying when it is a column's only value.
///
/// ```
/// use vgi_rpc::schema::Blob;
///
/// let blob = Blob::from(vec![1u8, 2, 3]);
/// assert_eq!(&*blob, &[1, 2, 3]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob(Buffer);

impl Blob {
    /// The blob over `buffer` (no copy).
    pub fn new(buffer: Buffer) -> Self {
        Blob(buffer)
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        self.0.as_slice()
    }

    /// The Arrow buffer holding the bytes.
    pub fn buffer(&self) -> &Buffer {
        &self.0
    }

    /// The Arrow buffer holding the bytes.
    pub fn into_buffer(self) -> Buffer {
        self.0
    }
}

impl Default for Blob {
    fn default() -> Self {
        Blob(Buffer::from_vec(Vec::<u8>::new()))
    }
}

impl std::hash::Hash for Blob {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl std::ops::Deref for Blob {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for Blob {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl From<Buffer> for Blob {
    fn from(buffer: Buffer) -> Self {
        Blob(buffer)
    }
}

impl From<Blob> for Buffer {
    fn from(blob: Blob) -> Self {
        blob.0
    }
}

/// Takes the vector's memory (no copy).
impl From<Vec<u8>> for Blob {
    fn from(bytes: Vec<u8>) -> Self {
        Blob(Buffer::from_vec(bytes))
    }
}

impl From<&[u8]> for Blob {
    fn from(bytes: &[u8]) -> Self {
        Blob(Buffer::from_slice_ref(bytes))
    }
}

impl ArrowValue for Blob {
    fn data_type() -> DataType {
        DataType::Binary
    }

    fn to_array(items: Vec<Option<Self>>) -> Result<ArrayRef> {
        // A column of one value is that value's buffer.
        byte_array::<BinaryType, _>(items)
    }

    fn from_array(array: &dyn Array, index: usize) -> Result<Option<Self>> {
        let Some(typed) = slot::<BinaryArray>(array, index, "binary")? else {
            return Ok(None);
        };
        let offsets = typed.value_offsets();
        let bound = |at: usize| {
            offsets
                .get(at)
                .and_then(|&o| usize::try_from(o).ok())
                .ok_or_else(|| Error::type_error("binary offsets out of range"))
        };
        let (start, end) = (bound(index)?, bound(index + 1)?);
        let values = typed.values();
        if start > end || end > values.len() {
            return Err(Error::type_error("binary offsets out of range"));
        }
        Ok(Some(Blob(values.slice_with_length(start, end - start))))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::schema::test_support::round_trip;

    #[test]
    fn blobs_round_trip() {
        round_trip(vec![
            Some(Blob::from(vec![0u8, 255, 1])),
            None,
            Some(Blob::default()),
        ]);
        round_trip(vec![Some(Blob::from(vec![7u8; 1000]))]);
        round_trip::<Blob>(vec![None]);
    }

    #[test]
    fn a_blob_is_the_memory_it_was_read_from_and_sent_from() {
        let value = vec![9u8; 4096];
        let ptr = value.as_ptr();
        // Alone in its column, the value is the column's data buffer.
        let array = Blob::to_array(vec![Some(Blob::from(value))]).unwrap();
        let typed = array.as_any().downcast_ref::<BinaryArray>().unwrap();
        assert_eq!(typed.value(0).as_ptr(), ptr);
        // Read back, it is a slice of that buffer.
        let several: ArrayRef = Arc::new(BinaryArray::from(vec![&b"ab"[..], b"cde"]));
        let read = Blob::from_array(several.as_ref(), 1).unwrap().unwrap();
        assert_eq!(&*read, b"cde");
        let typed = several.as_any().downcast_ref::<BinaryArray>().unwrap();
        assert_eq!(read.as_ptr(), typed.value(1).as_ptr());
    }

    #[test]
    fn other_types_are_errors() {
        let large = super::super::LargeBinary::to_array(vec![Some(vec![1].into())]).unwrap();
        assert!(Blob::from_array(large.as_ref(), 0).is_err());
        let blob = Blob::to_array(vec![Some(Blob::from(vec![1u8]))]).unwrap();
        assert!(Blob::from_array(blob.as_ref(), 1).is_err());
    }
}
