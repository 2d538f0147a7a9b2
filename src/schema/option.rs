//! `Option<T>`: the same Arrow type as `T`, in a nullable field.
//!
//! `None` is a null slot. Reading a null slot gives `Ok(Some(None))` (a present value that
//! is `None`), so callers that reject nulls for non-`Option` types accept them here. The
//! top-level forms forward to `T`, so `Option<Record>` is a nullable `binary` column at the
//! top level of a signature and a nullable struct when nested.

use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;

use super::ArrowValue;
use crate::Result;

impl<T: ArrowValue> ArrowValue for Option<T> {
    const NULLABLE: bool = true;

    fn data_type() -> DataType {
        T::data_type()
    }

    fn to_array(items: Vec<Option<Self>>) -> Result<ArrayRef> {
        T::to_array(items.into_iter().map(Option::flatten).collect())
    }

    fn from_array(array: &dyn Array, index: usize) -> Result<Option<Self>> {
        T::from_array(array, index).map(Some)
    }

    fn top_level_data_type() -> DataType {
        T::top_level_data_type()
    }

    fn to_top_level_array(items: Vec<Option<Self>>) -> Result<ArrayRef> {
        T::to_top_level_array(items.into_iter().map(Option::flatten).collect())
    }

    fn from_top_level_array(array: &dyn Array, index: usize) -> Result<Option<Self>> {
        T::from_top_level_array(array, index).map(Some)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn null_reads_as_present_none() {
        assert_eq!([<Option<i64>>::NULLABLE, i64::NULLABLE], [true, false]);
        assert_eq!(<Option<i64>>::data_type(), DataType::Int64);
        let array = <Option<i64>>::to_array(vec![Some(Some(7)), Some(None), None]).unwrap();
        assert_eq!(array.null_count(), 2);
        assert_eq!(
            <Option<i64>>::from_array(array.as_ref(), 0).unwrap(),
            Some(Some(7))
        );
        assert_eq!(
            <Option<i64>>::from_array(array.as_ref(), 1).unwrap(),
            Some(None)
        );
        assert_eq!(
            <Option<i64>>::from_array(array.as_ref(), 2).unwrap(),
            Some(None)
        );
        assert!(<Option<i64>>::from_array(array.as_ref(), 3).is_err());
        assert_eq!(i64::from_array(array.as_ref(), 1).unwrap(), None);
    }

    #[test]
    fn wrong_type_is_an_error() {
        let array = <Option<String>>::to_array(vec![Some(None)]).unwrap();
        assert!(<Option<i64>>::from_array(array.as_ref(), 0).is_err());
    }
}
