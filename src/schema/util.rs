//! Shared helpers for the [`ArrowValue`](super::ArrowValue) implementations: checked
//! downcasts and bounds checks that turn a wrong column into a typed error instead of a
//! panic, validity buffers, and byte-column building that reports offset overflow as an
//! error (arrow's builders panic on it).

use std::sync::Arc;

use arrow_array::types::ByteArrayType;
use arrow_array::{Array, ArrayRef, ArrowPrimitiveType, GenericByteArray, PrimitiveArray};
use arrow_buffer::{ArrowNativeType, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::DataType;

use crate::{Error, Result};

/// Downcasts `array` to `A`, or fails with a type error naming `expected`.
pub(crate) fn downcast<'a, A: Array + 'static>(
    array: &'a dyn Array,
    expected: &str,
) -> Result<&'a A> {
    array.as_any().downcast_ref::<A>().ok_or_else(|| {
        Error::type_error(format!(
            "expected a {expected} column, got {}",
            array.data_type()
        ))
    })
}

/// Fails unless `index` is a valid row of `array`.
pub(crate) fn check_index(array: &dyn Array, index: usize) -> Result<()> {
    if index < array.len() {
        Ok(())
    } else {
        Err(Error::type_error(format!(
            "row {index} out of bounds for a column of {} rows",
            array.len()
        )))
    }
}

/// Downcasts `array` to `A` (named `expected` in errors) and checks `index`; `None` when the
/// slot is null.
pub(crate) fn slot<'a, A: Array + 'static>(
    array: &'a dyn Array,
    index: usize,
    expected: &str,
) -> Result<Option<&'a A>> {
    let typed = downcast::<A>(array, expected)?;
    check_index(array, index)?;
    Ok(if array.is_null(index) {
        None
    } else {
        Some(typed)
    })
}

/// Like [`slot`], but first requires the column's type to be exactly `expected`. Used by
/// leaf types whose Rust array type does not pin every parameter (decimal precision and
/// scale, time units, timezones, fixed sizes).
pub(crate) fn exact_slot<'a, A: Array + 'static>(
    array: &'a dyn Array,
    index: usize,
    expected: &DataType,
) -> Result<Option<&'a A>> {
    if array.data_type() != expected {
        return Err(Error::type_error(format!(
            "expected a {expected} column, got {}",
            array.data_type()
        )));
    }
    slot::<A>(array, index, &expected.to_string())
}

/// A validity buffer from per-row flags; `None` when every row is valid.
pub(crate) fn null_buffer(validity: Vec<bool>) -> Option<NullBuffer> {
    if validity.iter().all(|v| *v) {
        None
    } else {
        Some(NullBuffer::from(validity))
    }
}

/// Builds a primitive column of type `data_type` from `items`, converting each value with
/// `convert` (which reports unrepresentable values).
pub(crate) fn primitive_array<P, T>(
    items: Vec<Option<T>>,
    data_type: DataType,
    convert: impl Fn(T) -> Result<P::Native>,
) -> Result<ArrayRef>
where
    P: ArrowPrimitiveType,
{
    let values = items
        .into_iter()
        .map(|item| item.map(&convert).transpose())
        .collect::<Result<Vec<Option<P::Native>>>>()?;
    let array: PrimitiveArray<P> = values.into_iter().collect();
    if !PrimitiveArray::<P>::is_compatible(&data_type) {
        return Err(Error::type_error(format!(
            "{data_type} is not a valid type for this column"
        )));
    }
    Ok(Arc::new(array.with_data_type(data_type)))
}

/// Builds a variable-length byte column (`binary`, `utf8` and their large forms) from owned
/// byte values (vectors, or buffers already in Arrow's hands).
///
/// A single value is moved into the column without copying (the common case of one large
/// top-level argument); otherwise the values are concatenated once.
///
/// # Errors
/// Fails when the total size overflows the offset type (2 GiB for 32-bit offsets) or, for
/// string types, when a value is not valid UTF-8.
pub(crate) fn byte_array<T, V>(items: Vec<Option<V>>) -> Result<ArrayRef>
where
    T: ByteArrayType,
    V: AsRef<[u8]> + Into<Buffer>,
{
    let mut lengths = Vec::with_capacity(items.len());
    let mut validity = Vec::with_capacity(items.len());
    for item in &items {
        lengths.push(item.as_ref().map_or(0, |v| v.as_ref().len()));
        validity.push(item.is_some());
    }
    let mut offsets = Vec::with_capacity(items.len() + 1);
    let mut total = 0usize;
    offsets.push(T::Offset::usize_as(0));
    for len in lengths {
        total = total
            .checked_add(len)
            .ok_or_else(|| Error::type_error("byte column size overflows usize"))?;
        let offset = T::Offset::from_usize(total).ok_or_else(|| {
            Error::type_error(format!(
                "{total} bytes do not fit a {} column; use a large type",
                T::DATA_TYPE
            ))
        })?;
        offsets.push(offset);
    }
    let nulls = null_buffer(validity);
    let values = if items.len() == 1 {
        items
            .into_iter()
            .flatten()
            .next()
            .map_or_else(Buffer::default, Into::into)
    } else {
        let mut data = Vec::with_capacity(total);
        for item in items.into_iter().flatten() {
            data.extend_from_slice(item.as_ref());
        }
        Buffer::from_vec(data)
    };
    let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
    Ok(Arc::new(GenericByteArray::<T>::try_new(
        offsets, values, nulls,
    )?))
}

/// Implements the usual conversions for a single-field newtype over `$inner`.
macro_rules! newtype_conversions {
    ($name:ident, $inner:ty) => {
        impl $name {
            /// Unwraps the inner value.
            pub fn into_inner(self) -> $inner {
                self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = $inner;
            fn deref(&self) -> &$inner {
                &self.0
            }
        }

        impl std::ops::DerefMut for $name {
            fn deref_mut(&mut self) -> &mut $inner {
                &mut self.0
            }
        }

        impl From<$inner> for $name {
            fn from(value: $inner) -> Self {
                $name(value)
            }
        }

        impl From<$name> for $inner {
            fn from(value: $name) -> Self {
                value.0
            }
        }
    };
}

pub(crate) use newtype_conversions;
