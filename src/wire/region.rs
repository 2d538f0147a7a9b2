//! The bytes of a batch placed in a shared region, in the reference's (vgi-rpc 0.52.2)
//! layout, and their zero-copy decoding.
//!
//! A region holds one batch as IPC messages: a whole stream (schema, batch, EOS) — or,
//! when a top-level field of the schema is dictionary-encoded, only the dictionary and
//! batch messages (the reader rebuilds the stream from the pointer batch's schema). The
//! batch message carries no custom metadata; that rides on the pointer batch.
//!
//! Writing copies the column data once, straight into the region: arrow-ipc's
//! `StreamEncoder` yields the message as a list of buffers whose body parts *are* the
//! batch's own Arrow buffers (no intermediate body `Vec`), and [`RegionEncoding::write_into`]
//! copies them into place. Buffers are 64-byte aligned, so a reader that maps the region
//! at a 64-byte boundary uses them in place. Reading ([`decode_region`]) slices the
//! region's [`Buffer`] for every message body: the batch's buffers point into the region.

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::MetadataVersion;
use arrow_ipc::writer::{IpcWriteOptions, StreamEncoder};
use arrow_schema::{DataType, Schema, SchemaRef};

use super::Limits;
use super::decode::{StreamDecoder, next_message_in};
use super::encode::EOS;
use crate::{Error, Result};

/// Buffer alignment inside regions (the IPC maximum; any reader accepts it).
const REGION_ALIGNMENT: usize = 64;

/// A batch encoded for a region: its IPC pieces, ready to be copied in.
#[derive(Debug)]
pub struct RegionEncoding {
    buffers: Vec<Buffer>,
    /// Leading bytes left out (the schema message, for dictionary schemas).
    skip: usize,
    /// Whether an EOS marker follows (whole-stream layout).
    eos: bool,
    len: usize,
}

impl RegionEncoding {
    /// Encodes `batch` (without its custom metadata) in the region layout.
    ///
    /// # Errors
    /// Fails when arrow cannot encode the batch.
    pub fn new(batch: &RecordBatch) -> Result<Self> {
        let schema = batch.schema();
        let options = IpcWriteOptions::try_new(REGION_ALIGNMENT, false, MetadataVersion::V5)?;
        let mut encoder = StreamEncoder::try_new_with_options(&schema, options)?;
        let buffers = encoder.encode(batch)?;
        let total: usize = buffers.iter().map(Buffer::len).sum();
        let dictionaries = has_top_level_dictionary(&schema);
        let skip = if dictionaries {
            schema_message_len(&buffers)?
        } else {
            0
        };
        let eos = !dictionaries;
        let len = total
            .checked_sub(skip)
            .ok_or_else(|| Error::protocol("arrow produced a truncated schema message"))?
            + if eos { EOS.len() } else { 0 };
        Ok(RegionEncoding {
            buffers,
            skip,
            eos,
            len,
        })
    }

    /// Bytes [`RegionEncoding::write_into`] writes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing would be written (never, for a real batch).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies the encoding to the start of `dst`; returns the bytes written.
    ///
    /// # Errors
    /// [`Error::Protocol`] when `dst` is shorter than [`RegionEncoding::len`].
    pub fn write_into(&self, dst: &mut [u8]) -> Result<usize> {
        if dst.len() < self.len {
            return Err(Error::protocol(format!(
                "a {}-byte region cannot hold a {}-byte batch",
                dst.len(),
                self.len
            )));
        }
        let mut skip = self.skip;
        let mut at = 0;
        for buffer in &self.buffers {
            let bytes = buffer.as_slice();
            let bytes = &bytes[skip.min(bytes.len())..];
            skip = skip.saturating_sub(buffer.len());
            dst[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        }
        if self.eos {
            dst[at..at + EOS.len()].copy_from_slice(&EOS);
            at += EOS.len();
        }
        Ok(at)
    }
}

/// The reference's test for the region layout: only top-level dictionary fields count.
fn has_top_level_dictionary(schema: &Schema) -> bool {
    schema
        .fields()
        .iter()
        .any(|f| matches!(f.data_type(), DataType::Dictionary(..)))
}

/// Length of the schema message that starts an encoder's first output: its 8-byte
/// prefix (continuation, padded metadata length) plus that length (it has no body).
fn schema_message_len(buffers: &[Buffer]) -> Result<usize> {
    let prefix: Vec<u8> = buffers
        .iter()
        .flat_map(|b| b.as_slice().iter().copied())
        .take(8)
        .collect();
    match prefix.as_slice() {
        [0xff, 0xff, 0xff, 0xff, a, b, c, d] => {
            let len = i32::from_le_bytes([*a, *b, *c, *d]);
            usize::try_from(len)
                .map(|len| len + 8)
                .map_err(|_| Error::protocol("arrow produced a negative schema length"))
        }
        _ => Err(Error::protocol(
            "arrow's IPC encoder did not start with a schema message",
        )),
    }
}

/// Decodes the one batch a region holds, without copying: the batch's buffers are slices
/// of `region` and keep it alive. `schema` is the pointer batch's schema: it decodes a
/// region that starts with a dictionary message (no schema message), and a region that
/// carries its own schema must agree with it.
///
/// # Errors
/// [`Error::Protocol`] for anything but exactly one well-formed batch of that schema.
pub fn decode_region(region: &Buffer, schema: &SchemaRef) -> Result<RecordBatch> {
    decode_region_with(region, schema, &Limits::default())
}

/// [`decode_region`], checking the batch at the [validation level](Limits::validation)
/// of `limits` (a connection's: below full only where the caller lowered it and the
/// peer is a process it controls).
///
/// # Errors
/// As [`decode_region`].
pub fn decode_region_with(
    region: &Buffer,
    schema: &SchemaRef,
    limits: &Limits,
) -> Result<RecordBatch> {
    let validation = limits.validation();
    let mut pos = 0;
    let mut decoder: Option<StreamDecoder> = None;
    let mut batch = None;
    while let Some(raw) = next_message_in(region, &mut pos)? {
        let is_schema = raw.message()?.header_type() == arrow_ipc::MessageHeader::Schema;
        let decoder = match (&mut decoder, is_schema) {
            (None, true) => {
                let d = StreamDecoder::from_schema_message(&raw)?.with_validation(validation);
                if !same_types(d.schema(), schema) {
                    return Err(Error::protocol(format!(
                        "the shm region's schema {:?} does not match its pointer's {:?}",
                        d.schema().fields(),
                        schema.fields()
                    )));
                }
                decoder = Some(d);
                continue;
            }
            (Some(_), true) => {
                return Err(Error::protocol("a second schema message in an shm region"));
            }
            (d, false) => d.get_or_insert_with(|| {
                StreamDecoder::with_schema(schema.clone()).with_validation(validation)
            }),
        };
        if let Some((decoded, _)) = decoder.decode(&raw)?
            && batch.replace(decoded).is_some()
        {
            return Err(Error::protocol("an shm region holds more than one batch"));
        }
    }
    batch.ok_or_else(|| Error::protocol("an shm region holds no batch"))
}

/// Same column count and types (names and nullability do not change the layout).
fn same_types(a: &Schema, b: &Schema) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields()
            .iter()
            .zip(b.fields().iter())
            .all(|(x, y)| x.data_type() == y.data_type())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use arrow_array::types::Int16Type;
    use arrow_array::{Array, ArrayRef, DictionaryArray, Int64Array, LargeBinaryArray};
    use arrow_schema::Field;

    use super::*;
    use crate::wire::{Metadata, StreamEncoder};

    fn int_batch(n: i64) -> RecordBatch {
        let values: ArrayRef = Arc::new(Int64Array::from_iter_values(0..n));
        RecordBatch::try_from_iter([("v", values)]).unwrap()
    }

    fn dict_batch() -> RecordBatch {
        let dict: DictionaryArray<Int16Type> = ["a", "b", "a", "c"].into_iter().collect();
        let dict: ArrayRef = Arc::new(dict);
        RecordBatch::try_from_iter([("s", dict)]).unwrap()
    }

    fn round_trip(batch: &RecordBatch) -> (Vec<u8>, RecordBatch) {
        let encoding = RegionEncoding::new(batch).unwrap();
        let mut bytes = vec![0u8; encoding.len() + 5];
        let written = encoding.write_into(&mut bytes).unwrap();
        assert_eq!(written, encoding.len());
        bytes.truncate(written);
        let decoded = decode_region(&Buffer::from(bytes.clone()), &batch.schema()).unwrap();
        (bytes, decoded)
    }

    #[test]
    fn plain_schemas_hold_a_whole_stream() {
        let batch = int_batch(1000);
        let (bytes, decoded) = round_trip(&batch);
        assert_eq!(decoded, batch);
        assert_eq!(&bytes[bytes.len() - 8..], &EOS);
        // A whole stream: our own stream decoder reads it too.
        let (_, batches) = crate::wire::decode_stream(&bytes).unwrap();
        assert_eq!(batches, [batch]);
    }

    #[test]
    fn dictionary_schemas_hold_only_dictionary_and_batch_messages() {
        let batch = dict_batch();
        let (bytes, decoded) = round_trip(&batch);
        assert_eq!(decoded, batch);
        // No schema message and no EOS: prepend our schema message and append EOS and
        // it is a stream again (what the reference's reader does).
        let mut stream = crate::wire::encode_schema_message(&batch.schema());
        stream.extend_from_slice(&bytes);
        stream.extend_from_slice(&EOS);
        let (_, batches) = crate::wire::decode_stream(&stream).unwrap();
        assert_eq!(batches, [batch]);
    }

    #[test]
    fn decoding_is_zero_copy() {
        let values: ArrayRef = Arc::new(LargeBinaryArray::from_iter_values([vec![7u8; 1 << 20]]));
        let batch = RecordBatch::try_from_iter([("result", values)]).unwrap();
        let encoding = RegionEncoding::new(&batch).unwrap();
        let mut bytes = vec![0u8; encoding.len()];
        encoding.write_into(&mut bytes).unwrap();
        let region = Buffer::from(bytes);
        let decoded = decode_region(&region, &batch.schema()).unwrap();
        let data = decoded.column(0).to_data();
        let values = data.buffers()[1].as_ptr() as usize;
        let start = region.as_ptr() as usize;
        assert!((start..start + region.len()).contains(&values));
        assert_eq!(decoded, batch);
    }

    #[test]
    fn encoding_borrows_the_batch_buffers_until_the_one_copy() {
        let values: ArrayRef = Arc::new(LargeBinaryArray::from_iter_values([vec![7u8; 1 << 20]]));
        let batch = RecordBatch::try_from_iter([("result", values)]).unwrap();
        let data = batch.column(0).to_data();
        let column = data.buffers()[1].as_ptr();
        let encoding = RegionEncoding::new(&batch).unwrap();
        assert!(
            encoding.buffers.iter().any(|b| b.as_ptr() == column),
            "the body should be the batch's own buffer, not an intermediate copy"
        );
    }

    #[test]
    fn reads_regions_in_our_stream_encoders_layout_too() {
        // 8-byte alignment and C++ field order, as pyarrow writes them.
        let batch = int_batch(100);
        let mut bytes = Vec::new();
        let mut enc = StreamEncoder::new();
        enc.schema(&mut bytes, &batch.schema());
        enc.batch(&mut bytes, &batch, &Metadata::new()).unwrap();
        enc.eos(&mut bytes);
        let decoded = decode_region(&Buffer::from(bytes), &batch.schema()).unwrap();
        assert_eq!(decoded, batch);
    }

    #[test]
    fn rejects_regions_that_do_not_hold_one_matching_batch() {
        let batch = int_batch(10);
        let (bytes, _) = round_trip(&batch);
        let other = Arc::new(Schema::new(vec![Field::new("v", DataType::Utf8, true)]));
        assert!(decode_region(&Buffer::from(bytes.clone()), &other).is_err());
        assert!(decode_region(&Buffer::from(EOS.to_vec()), &batch.schema()).is_err());
        assert!(
            decode_region(
                &Buffer::from(bytes[..bytes.len() / 2].to_vec()),
                &batch.schema()
            )
            .is_err()
        );
        let mut two = bytes[..bytes.len() - 8].to_vec();
        let mut enc = StreamEncoder::new();
        enc.schema(&mut Vec::new(), &batch.schema());
        enc.batch(&mut two, &batch, &Metadata::new()).unwrap();
        assert!(decode_region(&Buffer::from(two), &batch.schema()).is_err());
        assert!(decode_region(&Buffer::from(vec![0xffu8; 64]), &batch.schema()).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// A peer's region bytes never make the decoder panic: arbitrary bytes, and a
        /// valid region with bytes flipped, truncated or extended.
        #[test]
        fn arbitrary_regions_never_panic(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
            flips in proptest::collection::vec(
                (proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()),
                0..8,
            ),
            cut in proptest::prelude::any::<usize>(),
            dictionary in proptest::prelude::any::<bool>(),
        ) {
            let batch = if dictionary { dict_batch() } else { int_batch(20) };
            let _ = decode_region(&Buffer::from(bytes.clone()), &batch.schema());
            let (mut valid, _) = round_trip(&batch);
            for (at, value) in flips {
                let len = valid.len();
                valid[at % len] ^= value;
            }
            let _ = decode_region(&Buffer::from(valid.clone()), &batch.schema());
            valid.truncate(cut % (valid.len() + 1));
            let _ = decode_region(&Buffer::from(valid.clone()), &batch.schema());
            valid.extend_from_slice(&bytes);
            let _ = decode_region(&Buffer::from(valid), &batch.schema());
        }
    }

    #[test]
    fn a_short_destination_is_an_error() {
        let encoding = RegionEncoding::new(&int_batch(10)).unwrap();
        let mut small = vec![0u8; encoding.len() - 1];
        assert!(encoding.write_into(&mut small).is_err());
        assert_eq!(dict_batch().column(0).len(), 4);
    }
}
