//! Stream headers: a record sent once, as its own IPC stream, before a stream's output.

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::schema::ArrowRecord;
use crate::{Error, Result};

/// A header type for [`super::Producer`] / [`super::Exchange`]: `()` for none, or any
/// [`ArrowRecord`].
pub trait StreamHeader: Send + 'static {
    /// The header stream's schema, `None` when the stream has no header.
    fn header_schema() -> Option<SchemaRef>;

    /// The one-row header batch, `None` when the stream has no header.
    ///
    /// # Errors
    /// Fails when the header cannot be encoded.
    fn into_header_batch(self) -> Result<Option<RecordBatch>>;

    /// Decodes the header a client received (`None` when the server sent no header).
    ///
    /// # Errors
    /// Fails when a declared header is missing or does not decode.
    fn from_header_batch(batch: Option<&RecordBatch>) -> Result<Self>
    where
        Self: Sized;
}

impl StreamHeader for () {
    fn header_schema() -> Option<SchemaRef> {
        None
    }

    fn into_header_batch(self) -> Result<Option<RecordBatch>> {
        Ok(None)
    }

    fn from_header_batch(_batch: Option<&RecordBatch>) -> Result<Self> {
        Ok(())
    }
}

impl<T: ArrowRecord> StreamHeader for T {
    fn header_schema() -> Option<SchemaRef> {
        Some(T::schema())
    }

    fn into_header_batch(self) -> Result<Option<RecordBatch>> {
        T::to_batch(vec![self]).map(Some)
    }

    fn from_header_batch(batch: Option<&RecordBatch>) -> Result<Self> {
        match batch {
            Some(batch) if batch.num_rows() > 0 => T::from_batch(batch, 0),
            _ => Err(Error::type_error(
                "the stream declares a header but none arrived",
            )),
        }
    }
}
