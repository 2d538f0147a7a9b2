//! Fixed-width scalars: the integers (`int8`..`uint64`), `float32`, `float64` and `bool`.
//!
//! Values are stored bit for bit, so every float (including `-0.0`, NaN payloads, the
//! infinities and subnormals such as `5e-324`) round-trips exactly.

use std::sync::Arc;

use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, BooleanArray, PrimitiveArray};
use arrow_schema::DataType;

use super::ArrowValue;
use super::util::exact_slot;
use crate::Result;

macro_rules! primitive_value {
    ($($rust:ty => $arrow:ty, $data_type:expr;)*) => {$(
        impl ArrowValue for $rust {
            fn data_type() -> DataType {
                $data_type
            }

            fn to_array(items: Vec<Option<Self>>) -> Result<ArrayRef> {
                Ok(Arc::new(PrimitiveArray::<$arrow>::from(items)))
            }

            fn from_array(array: &dyn Array, index: usize) -> Result<Option<Self>> {
                let slot = exact_slot::<PrimitiveArray<$arrow>>(array, index, &$data_type)?;
                Ok(slot.map(|a| a.value(index)))
            }
        }
    )*};
}

primitive_value! {
    i8 => Int8Type, DataType::Int8;
    i16 => Int16Type, DataType::Int16;
    i32 => Int32Type, DataType::Int32;
    i64 => Int64Type, DataType::Int64;
    u8 => UInt8Type, DataType::UInt8;
    u16 => UInt16Type, DataType::UInt16;
    u32 => UInt32Type, DataType::UInt32;
    u64 => UInt64Type, DataType::UInt64;
    f32 => Float32Type, DataType::Float32;
    f64 => Float64Type, DataType::Float64;
}

impl ArrowValue for bool {
    fn data_type() -> DataType {
        DataType::Boolean
    }

    fn to_array(items: Vec<Option<Self>>) -> Result<ArrayRef> {
        Ok(Arc::new(BooleanArray::from(items)))
    }

    fn from_array(array: &dyn Array, index: usize) -> Result<Option<Self>> {
        let slot = exact_slot::<BooleanArray>(array, index, &DataType::Boolean)?;
        Ok(slot.map(|a| a.value(index)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use arrow_array::{Int32Array, StringArray};

    fn round_trip<T: ArrowValue + Clone>(items: Vec<Option<T>>) -> Vec<Option<T>> {
        let array = T::to_array(items.clone()).unwrap();
        assert_eq!(array.data_type(), &T::data_type());
        assert_eq!(array.len(), items.len());
        (0..items.len())
            .map(|i| T::from_array(array.as_ref(), i).unwrap())
            .collect()
    }

    #[test]
    fn integers_round_trip_with_nulls() {
        assert_eq!(
            round_trip(vec![Some(i8::MIN), None, Some(i8::MAX)]),
            vec![Some(i8::MIN), None, Some(i8::MAX)]
        );
        assert_eq!(
            round_trip(vec![Some(i16::MIN), None]),
            vec![Some(i16::MIN), None]
        );
        assert_eq!(round_trip(vec![Some(i32::MAX)]), vec![Some(i32::MAX)]);
        assert_eq!(
            round_trip(vec![Some(i64::MIN), Some(0), None]),
            vec![Some(i64::MIN), Some(0), None]
        );
        assert_eq!(round_trip(vec![Some(u8::MAX)]), vec![Some(u8::MAX)]);
        assert_eq!(round_trip(vec![Some(u16::MAX)]), vec![Some(u16::MAX)]);
        assert_eq!(round_trip(vec![Some(u32::MAX)]), vec![Some(u32::MAX)]);
        assert_eq!(
            round_trip(vec![Some(u64::MAX), None]),
            vec![Some(u64::MAX), None]
        );
        assert_eq!(
            round_trip(vec![Some(true), None, Some(false)]),
            vec![Some(true), None, Some(false)]
        );
    }

    #[test]
    fn floats_round_trip_bit_exact() {
        let values = [
            -0.0f64,
            0.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            5e-324,
            1.5,
        ];
        let back = round_trip(values.iter().copied().map(Some).collect());
        for (v, b) in values.iter().zip(back) {
            assert_eq!(v.to_bits(), b.unwrap().to_bits());
        }
        let values32 = [-0.0f32, f32::NAN, f32::INFINITY, f32::MIN_POSITIVE / 2.0];
        let back = round_trip(values32.iter().copied().map(Some).collect());
        for (v, b) in values32.iter().zip(back) {
            assert_eq!(v.to_bits(), b.unwrap().to_bits());
        }
    }

    #[test]
    fn wrong_type_and_bounds_are_errors() {
        let ints: ArrayRef = Arc::new(Int32Array::from(vec![1]));
        assert!(i64::from_array(ints.as_ref(), 0).is_err());
        assert!(u32::from_array(ints.as_ref(), 0).is_err());
        assert!(i32::from_array(ints.as_ref(), 1).is_err());
        let strings: ArrayRef = Arc::new(StringArray::from(vec!["x"]));
        assert!(bool::from_array(strings.as_ref(), 0).is_err());
        assert!(f64::from_array(strings.as_ref(), 0).is_err());
    }
}
