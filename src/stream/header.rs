//! Stream headers: a record sent once, as its own IPC stream, before a stream's output.

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::Result;
use crate::schema::ArrowRecord;

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
}

impl StreamHeader for () {
    fn header_schema() -> Option<SchemaRef> {
        None
    }

    fn into_header_batch(self) -> Result<Option<RecordBatch>> {
        Ok(None)
    }
}

impl<T: ArrowRecord> StreamHeader for T {
    fn header_schema() -> Option<SchemaRef> {
        Some(T::schema())
    }

    fn into_header_batch(self) -> Result<Option<RecordBatch>> {
        T::to_batch(vec![self]).map(Some)
    }
}
