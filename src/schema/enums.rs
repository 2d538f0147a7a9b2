//! Enums as values: a fieldless [`ArrowEnum`] is `dictionary<int16, utf8>` holding the
//! member **name**.
//!
//! Writing always uses the full member list ([`ArrowEnum::NAMES`], in order) as the
//! dictionary. Reading looks the name up, so a peer's dictionary may hold the members in
//! any order or only a subset; an unknown name fails like Python's `Enum[name]`, with a
//! `KeyError` whose message is the quoted name.
//!
//! `#[derive(ArrowEnum)]` implements `ArrowValue` with one line:
//!
//! ```ignore
//! ::vgi_rpc::__impl_enum_value!(Status);
//! ```

use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;

use super::ArrowEnum;
use super::text::{dictionary_array, dictionary_str, dictionary_utf8_type};
use crate::{Error, Result, RpcError};

/// The Arrow type of every enum: `dictionary<int16, utf8>`.
pub fn enum_data_type() -> DataType {
    dictionary_utf8_type()
}

/// Builds an enum column: dictionary = all of `E::NAMES` in order, keys index into it.
///
/// # Errors
/// Fails when `E` has more than 32768 members.
pub fn enum_to_array<E: ArrowEnum>(items: Vec<Option<E>>) -> Result<ArrayRef> {
    dictionary_array(E::NAMES.to_vec(), items.iter().map(|e| e.map(|e| e.name())))
}

/// Reads row `index` of an enum column; `None` when the slot is null.
///
/// # Errors
/// [`crate::Error::Type`] when the column is not an `int16`-keyed dictionary of `utf8`;
/// `Error::Rpc` with a `KeyError` (message `'NAME'`) when the name is not a member of `E`.
pub fn enum_from_array<E: ArrowEnum>(array: &dyn Array, index: usize) -> Result<Option<E>> {
    let Some(name) = dictionary_str(array, index)? else {
        return Ok(None);
    };
    E::from_name(name)
        .map(Some)
        .ok_or_else(|| Error::from(RpcError::new("KeyError", format!("'{name}'"))))
}

/// Implements `ArrowValue` for an `ArrowEnum` type (`dictionary<int16, utf8>` of member
/// names). Used by `#[derive(ArrowEnum)]`.
#[doc(hidden)]
#[macro_export]
macro_rules! __impl_enum_value {
    ($ty:ty) => {
        impl $crate::ArrowValue for $ty {
            fn data_type() -> $crate::private::arrow_schema::DataType {
                $crate::schema::enum_data_type()
            }

            fn to_array(
                items: ::std::vec::Vec<::std::option::Option<Self>>,
            ) -> $crate::Result<$crate::private::arrow_array::ArrayRef> {
                $crate::schema::enum_to_array(items)
            }

            fn from_array(
                array: &dyn $crate::private::arrow_array::Array,
                index: usize,
            ) -> $crate::Result<::std::option::Option<Self>> {
                $crate::schema::enum_from_array(array, index)
            }
        }
    };
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use arrow_array::types::{Int16Type, Int32Type};
    use arrow_array::{DictionaryArray, Int16Array, StringArray};

    use super::*;
    use crate::ArrowValue;
    use crate::schema::test_support::Status;

    #[test]
    fn writes_full_dictionary_in_declaration_order() {
        let array =
            Status::to_array(vec![Some(Status::Pending), None, Some(Status::Active)]).unwrap();
        assert_eq!(array.data_type(), &Status::data_type());
        let dict = array
            .as_any()
            .downcast_ref::<DictionaryArray<Int16Type>>()
            .unwrap();
        let values = dict
            .values()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(values.iter().flatten().collect::<Vec<_>>(), Status::NAMES);
        assert_eq!(dict.keys(), &Int16Array::from(vec![Some(2), None, Some(0)]));
        let back: Vec<_> = (0..3)
            .map(|i| Status::from_array(array.as_ref(), i).unwrap())
            .collect();
        assert_eq!(
            back,
            vec![Some(Status::Pending), None, Some(Status::Active)]
        );
    }

    #[test]
    fn reads_peer_dictionary_by_name() {
        let keys = Int16Array::from(vec![0, 1]);
        let values: ArrayRef = Arc::new(StringArray::from(vec!["INACTIVE", "BOGUS"]));
        let dict = DictionaryArray::<Int16Type>::try_new(keys, values).unwrap();
        assert_eq!(
            Status::from_array(&dict, 0).unwrap(),
            Some(Status::Inactive)
        );
        match Status::from_array(&dict, 1) {
            Err(Error::Rpc(e)) => {
                assert_eq!(e.error_type, "KeyError");
                assert_eq!(e.message, "'BOGUS'");
            }
            other => panic!("expected a KeyError, got {other:?}"),
        }
    }

    #[test]
    fn wrong_key_type_is_a_type_error() {
        let dict: DictionaryArray<Int32Type> = vec!["ACTIVE"].into_iter().collect();
        assert!(matches!(Status::from_array(&dict, 0), Err(Error::Type(_))));
        let plain = String::to_array(vec![Some("ACTIVE".into())]).unwrap();
        assert!(matches!(
            Status::from_array(plain.as_ref(), 0),
            Err(Error::Type(_))
        ));
    }
}
