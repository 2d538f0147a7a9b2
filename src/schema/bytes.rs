//! Byte strings: [`Bytes`] (`binary`), [`LargeBinary`] (`large_binary`, 64-bit offsets, for
//! values over 2 GiB) and `[u8; N]` (`fixed_size_binary(N)`).
//!
//! `Vec<u8>` is not a byte string here: `Vec<T>` is always a list, so `Vec<u8>` is
//! `list<item: uint8>`. Wrap byte vectors in [`Bytes`] or [`LargeBinary`].

use std::sync::Arc;

use arrow_array::types::{BinaryType, LargeBinaryType};
use arrow_array::{Array, ArrayRef, BinaryArray, FixedSizeBinaryArray, LargeBinaryArray};
use arrow_buffer::Buffer;
use arrow_schema::DataType;

use super::ArrowValue;
use super::util::{byte_array, exact_slot, newtype_conversions, null_buffer, slot};
use crate::{Error, Result};

/// Bytes carried as `binary` (32-bit offsets: a column holds at most 2 GiB).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes(pub Vec<u8>);

/// Bytes carried as `large_binary` (64-bit offsets), for values that may exceed 2 GiB.
///
/// A single value is moved into its column without copying.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LargeBinary(pub Vec<u8>);

macro_rules! bytes_newtype {
    ($name:ident) => {
        newtype_conversions!($name, Vec<u8>);

        impl From<&[u8]> for $name {
            fn from(value: &[u8]) -> Self {
                $name(value.to_vec())
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }
    };
}

bytes_newtype!(Bytes);
bytes_newtype!(LargeBinary);

impl ArrowValue for Bytes {
    fn data_type() -> DataType {
        DataType::Binary
    }

    fn to_array(items: Vec<Option<Self>>) -> Result<ArrayRef> {
        byte_array::<BinaryType, _>(items.into_iter().map(|b| b.map(|b| b.0)).collect())
    }

    fn from_array(array: &dyn Array, index: usize) -> Result<Option<Self>> {
        let slot = slot::<BinaryArray>(array, index, "binary")?;
        Ok(slot.map(|a| Bytes(a.value(index).to_vec())))
    }
}

impl ArrowValue for LargeBinary {
    fn data_type() -> DataType {
        DataType::LargeBinary
    }

    fn to_array(items: Vec<Option<Self>>) -> Result<ArrayRef> {
        byte_array::<LargeBinaryType, _>(items.into_iter().map(|b| b.map(|b| b.0)).collect())
    }

    fn from_array(array: &dyn Array, index: usize) -> Result<Option<Self>> {
        let slot = slot::<LargeBinaryArray>(array, index, "large_binary")?;
        Ok(slot.map(|a| LargeBinary(a.value(index).to_vec())))
    }
}

/// The `fixed_size_binary(N)` type, or an error when `N` does not fit an `i32`.
fn fixed_size_type<const N: usize>() -> Result<DataType> {
    i32::try_from(N)
        .map(DataType::FixedSizeBinary)
        .map_err(|_| Error::type_error(format!("fixed_size_binary({N}) is too wide")))
}

impl<const N: usize> ArrowValue for [u8; N] {
    fn data_type() -> DataType {
        // Arrays wider than 2 GiB cannot be described; `to_array`/`from_array` reject them.
        DataType::FixedSizeBinary(i32::try_from(N).unwrap_or(i32::MAX))
    }

    fn to_array(items: Vec<Option<Self>>) -> Result<ArrayRef> {
        let DataType::FixedSizeBinary(width) = fixed_size_type::<N>()? else {
            return Err(Error::type_error("fixed_size_binary width"));
        };
        let len = items.len();
        let size = N
            .checked_mul(len)
            .ok_or_else(|| Error::type_error("fixed_size_binary column too large"))?;
        let mut data = Vec::with_capacity(size);
        let mut validity = Vec::with_capacity(len);
        for item in &items {
            data.extend_from_slice(item.as_ref().unwrap_or(&[0u8; N]));
            validity.push(item.is_some());
        }
        let nulls = null_buffer(validity);
        let array =
            FixedSizeBinaryArray::try_new_with_len(width, Buffer::from_vec(data), nulls, len)?;
        Ok(Arc::new(array))
    }

    fn from_array(array: &dyn Array, index: usize) -> Result<Option<Self>> {
        let expected = fixed_size_type::<N>()?;
        let Some(typed) = exact_slot::<FixedSizeBinaryArray>(array, index, &expected)? else {
            return Ok(None);
        };
        let value = typed.value(index);
        <[u8; N]>::try_from(value)
            .map(Some)
            .map_err(|_| Error::type_error(format!("expected {N} bytes, got {}", value.len())))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::schema::test_support::round_trip;

    #[test]
    fn bytes_round_trip() {
        round_trip(vec![
            Some(Bytes(vec![0, 255, 1])),
            None,
            Some(Bytes::default()),
        ]);
        round_trip(vec![Some(LargeBinary(vec![7; 1000]))]);
        round_trip(vec![
            Some(LargeBinary(vec![1])),
            None,
            Some(LargeBinary(vec![2, 3])),
        ]);
        round_trip(vec![Some(*b"abcdefgh"), None, Some([0u8; 8])]);
        round_trip::<[u8; 0]>(vec![Some([]), None]);
        assert_eq!(<[u8; 8]>::data_type(), DataType::FixedSizeBinary(8));
    }

    #[test]
    fn single_large_value_is_not_copied() {
        let value = vec![9u8; 4096];
        let ptr = value.as_ptr();
        let array = LargeBinary::to_array(vec![Some(LargeBinary(value))]).unwrap();
        let typed = array.as_any().downcast_ref::<LargeBinaryArray>().unwrap();
        assert_eq!(typed.value(0).as_ptr(), ptr);
    }

    #[test]
    fn wrong_types_are_errors() {
        let large = LargeBinary::to_array(vec![Some(LargeBinary(vec![1]))]).unwrap();
        assert!(Bytes::from_array(large.as_ref(), 0).is_err());
        let fixed = <[u8; 4]>::to_array(vec![Some([1, 2, 3, 4])]).unwrap();
        assert!(<[u8; 8]>::from_array(fixed.as_ref(), 0).is_err());
        assert!(<[u8; 4]>::from_array(fixed.as_ref(), 1).is_err());
        assert!(LargeBinary::from_array(fixed.as_ref(), 0).is_err());
    }
}
