//! Strings: `String` (`utf8`), [`LargeString`] (`large_utf8`) and [`DictString`]
//! (`dictionary<int16, utf8>`), plus the dictionary reader shared with enums.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arrow_array::types::{Int16Type, LargeUtf8Type, Utf8Type};
use arrow_array::{Array, ArrayRef, DictionaryArray, Int16Array, LargeStringArray, StringArray};
use arrow_schema::DataType;

use super::ArrowValue;
use super::util::{byte_array, check_index, downcast, newtype_conversions, slot};
use crate::{Error, Result};

/// A string carried as `large_utf8` (64-bit offsets) instead of `utf8`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LargeString(pub String);

/// A string carried dictionary-encoded as `dictionary<int16, utf8>`.
///
/// Writing dictionary-encodes the column (first occurrence order); reading accepts any
/// `int16`-keyed dictionary with `utf8` values.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DictString(pub String);

macro_rules! string_newtype {
    ($name:ident) => {
        newtype_conversions!($name, String);

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                $name(value.to_owned())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_newtype!(LargeString);
string_newtype!(DictString);

impl ArrowValue for String {
    fn data_type() -> DataType {
        DataType::Utf8
    }

    fn to_array(items: Vec<Option<Self>>) -> Result<ArrayRef> {
        byte_array::<Utf8Type, _>(
            items
                .into_iter()
                .map(|s| s.map(String::into_bytes))
                .collect(),
        )
    }

    fn from_array(array: &dyn Array, index: usize) -> Result<Option<Self>> {
        let slot = slot::<StringArray>(array, index, "utf8")?;
        Ok(slot.map(|a| a.value(index).to_owned()))
    }
}

impl ArrowValue for LargeString {
    fn data_type() -> DataType {
        DataType::LargeUtf8
    }

    fn to_array(items: Vec<Option<Self>>) -> Result<ArrayRef> {
        byte_array::<LargeUtf8Type, _>(
            items
                .into_iter()
                .map(|s| s.map(|s| s.0.into_bytes()))
                .collect(),
        )
    }

    fn from_array(array: &dyn Array, index: usize) -> Result<Option<Self>> {
        let slot = slot::<LargeStringArray>(array, index, "large_utf8")?;
        Ok(slot.map(|a| LargeString(a.value(index).to_owned())))
    }
}

/// The Arrow type of dictionary-encoded strings and enums: `dictionary<int16, utf8>`.
pub fn dictionary_utf8_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int16), Box::new(DataType::Utf8))
}

/// Dictionary-encodes `items` with `int16` keys; `dictionary` is the initial dictionary
/// (values not in it are appended in first-occurrence order).
pub(crate) fn dictionary_array<'a>(
    dictionary: Vec<&'a str>,
    items: impl IntoIterator<Item = Option<&'a str>>,
) -> Result<ArrayRef> {
    let mut values = dictionary;
    let mut positions: HashMap<&str, i16> = HashMap::with_capacity(values.len());
    for (i, value) in values.iter().enumerate() {
        let key = i16::try_from(i).map_err(|_| too_many_values())?;
        positions.entry(value).or_insert(key);
    }
    let mut keys = Vec::new();
    for item in items {
        let key = match item {
            None => None,
            Some(value) => Some(match positions.get(value) {
                Some(key) => *key,
                None => {
                    let key = i16::try_from(values.len()).map_err(|_| too_many_values())?;
                    values.push(value);
                    positions.insert(value, key);
                    key
                }
            }),
        };
        keys.push(key);
    }
    let values: ArrayRef = Arc::new(StringArray::from(values));
    Ok(Arc::new(DictionaryArray::<Int16Type>::try_new(
        Int16Array::from(keys),
        values,
    )?))
}

fn too_many_values() -> Error {
    Error::type_error("more than 32768 distinct values in an int16 dictionary")
}

/// Reads row `index` of a `dictionary<int16, utf8>` column as the string it refers to.
/// `None` when the key or the dictionary entry is null.
pub(crate) fn dictionary_str(array: &dyn Array, index: usize) -> Result<Option<&str>> {
    let dict = match array.data_type() {
        DataType::Dictionary(key, value)
            if **key == DataType::Int16 && **value == DataType::Utf8 =>
        {
            downcast::<DictionaryArray<Int16Type>>(array, "dictionary<int16, utf8>")?
        }
        other => {
            return Err(Error::type_error(format!(
                "expected a dictionary<int16, utf8> column, got {other}"
            )));
        }
    };
    check_index(array, index)?;
    let keys = dict.keys();
    if keys.is_null(index) {
        return Ok(None);
    }
    let values = downcast::<StringArray>(dict.values().as_ref(), "utf8")?;
    let key = keys.value(index);
    let position = usize::try_from(key)
        .ok()
        .filter(|k| *k < values.len())
        .ok_or_else(|| {
            Error::type_error(format!(
                "dictionary key {key} out of range for a dictionary of {} values",
                values.len()
            ))
        })?;
    Ok(if values.is_null(position) {
        None
    } else {
        Some(values.value(position))
    })
}

impl ArrowValue for DictString {
    fn data_type() -> DataType {
        dictionary_utf8_type()
    }

    fn to_array(items: Vec<Option<Self>>) -> Result<ArrayRef> {
        dictionary_array(
            Vec::new(),
            items.iter().map(|s| s.as_ref().map(|s| s.0.as_str())),
        )
    }

    fn from_array(array: &dyn Array, index: usize) -> Result<Option<Self>> {
        Ok(dictionary_str(array, index)?.map(DictString::from))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::schema::test_support::round_trip;
    use arrow_array::types::Int8Type;

    #[test]
    fn strings_round_trip() {
        round_trip(vec![Some("héllo".to_owned()), None, Some(String::new())]);
        round_trip(vec![Some(LargeString::from("big")), None]);
        round_trip(vec![
            Some(DictString::from("a")),
            Some("b".into()),
            None,
            Some("a".into()),
        ]);
        round_trip::<String>(vec![]);
    }

    #[test]
    fn dict_string_deduplicates() {
        let items = vec![
            Some(DictString::from("x")),
            Some("y".into()),
            Some("x".into()),
        ];
        let array = DictString::to_array(items).unwrap();
        let dict = array
            .as_any()
            .downcast_ref::<DictionaryArray<Int16Type>>()
            .unwrap();
        assert_eq!(dict.values().len(), 2);
    }

    #[test]
    fn wrong_types_are_errors() {
        let large = LargeString::to_array(vec![Some("x".into())]).unwrap();
        assert!(String::from_array(large.as_ref(), 0).is_err());
        let utf8 = String::to_array(vec![Some("x".into())]).unwrap();
        assert!(LargeString::from_array(utf8.as_ref(), 0).is_err());
        assert!(DictString::from_array(utf8.as_ref(), 0).is_err());
        assert!(String::from_array(utf8.as_ref(), 1).is_err());
        let int8_keyed: DictionaryArray<Int8Type> = vec!["a"].into_iter().collect();
        assert!(DictString::from_array(&int8_keyed, 0).is_err());
    }

    #[test]
    fn foreign_dictionary_order_is_read_by_value() {
        let keys = Int16Array::from(vec![Some(1), None, Some(0)]);
        let values: ArrayRef = Arc::new(StringArray::from(vec![Some("b"), Some("a")]));
        let dict = DictionaryArray::<Int16Type>::try_new(keys, values).unwrap();
        assert_eq!(DictString::from_array(&dict, 0).unwrap(), Some("a".into()));
        assert_eq!(DictString::from_array(&dict, 1).unwrap(), None);
        assert_eq!(DictString::from_array(&dict, 2).unwrap(), Some("b".into()));
        assert!(DictString::from_array(&dict, 3).is_err());
    }
}
