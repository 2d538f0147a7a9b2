//! Arrow objects as values, as the reference carries `pa.RecordBatch` and `pa.Schema`
//! fields: a [`RecordBatch`] is a `binary` value holding a complete IPC stream (schema,
//! dictionaries, the one batch, EOS); a [`Schema`] is a `binary` value holding one
//! serialized schema message (pyarrow's `Schema.serialize()`, no EOS).

use std::sync::Arc;

use arrow_array::types::BinaryType;
use arrow_array::{Array, ArrayRef, BinaryArray, RecordBatch};
use arrow_schema::{DataType, Schema, SchemaRef};

use super::ArrowValue;
use super::util::{byte_array, slot};
use crate::{Error, Result, wire};

/// Reads row `index` of a `binary` column as a borrowed byte slice.
pub(crate) fn binary_slot(array: &dyn Array, index: usize) -> Result<Option<&[u8]>> {
    Ok(slot::<BinaryArray>(array, index, "binary")?.map(|a| a.value(index)))
}

/// Decodes an IPC stream that must hold exactly one batch.
pub(crate) fn decode_single_batch(bytes: &[u8]) -> Result<RecordBatch> {
    let (_, mut batches) = wire::decode_stream(bytes)?;
    match (batches.pop(), batches.is_empty()) {
        (Some(batch), true) => Ok(batch),
        _ => Err(Error::type_error(format!(
            "expected an IPC stream with exactly one batch, got {}",
            batches.len() + 1
        ))),
    }
}

impl ArrowValue for RecordBatch {
    fn data_type() -> DataType {
        DataType::Binary
    }

    fn to_array(items: Vec<Option<Self>>) -> Result<ArrayRef> {
        let streams = items
            .into_iter()
            .map(|b| {
                b.map(|b| wire::encode_stream(&b.schema(), std::slice::from_ref(&b)))
                    .transpose()
            })
            .collect::<Result<Vec<_>>>()?;
        byte_array::<BinaryType, _>(streams)
    }

    fn from_array(array: &dyn Array, index: usize) -> Result<Option<Self>> {
        binary_slot(array, index)?
            .map(decode_single_batch)
            .transpose()
    }
}

impl ArrowValue for SchemaRef {
    fn data_type() -> DataType {
        DataType::Binary
    }

    fn to_array(items: Vec<Option<Self>>) -> Result<ArrayRef> {
        let messages = items
            .iter()
            .map(|s| s.as_ref().map(|s| wire::encode_schema_message(s)))
            .collect();
        byte_array::<BinaryType, _>(messages)
    }

    fn from_array(array: &dyn Array, index: usize) -> Result<Option<Self>> {
        binary_slot(array, index)?
            .map(wire::decode_schema_message)
            .transpose()
    }
}

impl ArrowValue for Schema {
    fn data_type() -> DataType {
        DataType::Binary
    }

    fn to_array(items: Vec<Option<Self>>) -> Result<ArrayRef> {
        SchemaRef::to_array(items.into_iter().map(|s| s.map(Arc::new)).collect())
    }

    fn from_array(array: &dyn Array, index: usize) -> Result<Option<Self>> {
        Ok(SchemaRef::from_array(array, index)?.map(Arc::unwrap_or_clone))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use arrow_array::Int64Array;
    use arrow_schema::Field;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]));
        RecordBatch::try_new(
            schema,
            vec![Arc::new(Int64Array::from(vec![Some(1), None]))],
        )
        .unwrap()
    }

    #[test]
    fn batches_and_schemas_round_trip() {
        let b = batch();
        let array = RecordBatch::to_array(vec![Some(b.clone()), None]).unwrap();
        assert_eq!(array.data_type(), &DataType::Binary);
        assert_eq!(
            RecordBatch::from_array(array.as_ref(), 0).unwrap(),
            Some(b.clone())
        );
        assert_eq!(RecordBatch::from_array(array.as_ref(), 1).unwrap(), None);

        let schema = b.schema().as_ref().clone();
        let array = Schema::to_array(vec![Some(schema.clone()), None]).unwrap();
        assert_eq!(Schema::from_array(array.as_ref(), 0).unwrap(), Some(schema));
        assert_eq!(Schema::from_array(array.as_ref(), 1).unwrap(), None);
    }

    #[test]
    fn stream_with_two_batches_is_rejected() {
        let b = batch();
        let bytes = wire::encode_stream(&b.schema(), &[b.clone(), b]).unwrap();
        assert!(decode_single_batch(&bytes).is_err());
    }

    #[test]
    fn garbage_is_an_error() {
        let array = crate::schema::Bytes::to_array(vec![Some(vec![1, 2, 3].into())]).unwrap();
        assert!(RecordBatch::from_array(array.as_ref(), 0).is_err());
        assert!(Schema::from_array(array.as_ref(), 0).is_err());
        let ints = i64::to_array(vec![Some(1)]).unwrap();
        assert!(RecordBatch::from_array(ints.as_ref(), 0).is_err());
    }
}
