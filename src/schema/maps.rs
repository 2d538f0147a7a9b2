//! Maps: `HashMap<K, V>` and `BTreeMap<K, V>` are
//! `map<entries: struct<key: K not null, value: V nullable>>` (keys not sorted), as pyarrow
//! spells `pa.map_(K, V)`.
//!
//! Entries are written in the map's iteration order. When reading, the entry struct's
//! children are taken by position (names are not checked), and a repeated key keeps the
//! last value, like Python's `dict(pairs)`.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, MapArray, StructArray};
use arrow_buffer::{OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, Fields};

use super::ArrowValue;
use super::util::{null_buffer, slot};
use crate::{Error, Result};

fn entry_fields<K: ArrowValue, V: ArrowValue>() -> Fields {
    Fields::from(vec![
        Field::new("key", K::data_type(), false),
        Field::new("value", V::data_type(), true),
    ])
}

/// The Arrow type of a map from `K` to `V` (non-null keys, nullable values, unsorted).
pub fn map_type<K: ArrowValue, V: ArrowValue>() -> DataType {
    DataType::Map(
        Arc::new(Field::new(
            "entries",
            DataType::Struct(entry_fields::<K, V>()),
            false,
        )),
        false,
    )
}

/// Builds a map column; each row is any collection of `(key, value)` pairs.
pub(crate) fn map_array<K, V, I>(rows: Vec<Option<I>>) -> Result<ArrayRef>
where
    K: ArrowValue,
    V: ArrowValue,
    I: IntoIterator<Item = (K, V)>,
{
    let mut offsets = Vec::with_capacity(rows.len() + 1);
    let mut validity = Vec::with_capacity(rows.len());
    let mut keys = Vec::new();
    let mut values = Vec::new();
    offsets.push(0i32);
    for row in rows {
        validity.push(row.is_some());
        for (key, value) in row.into_iter().flatten() {
            keys.push(Some(key));
            values.push(Some(value));
        }
        let end = i32::try_from(keys.len())
            .map_err(|_| Error::type_error("map column has more than 2^31 entries"))?;
        offsets.push(end);
    }
    let len = keys.len();
    let fields = entry_fields::<K, V>();
    let entries = StructArray::try_new_with_length(
        fields.clone(),
        vec![K::to_array(keys)?, V::to_array(values)?],
        None,
        len,
    )?;
    let field = Arc::new(Field::new("entries", DataType::Struct(fields), false));
    let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
    Ok(Arc::new(MapArray::try_new(
        field,
        offsets,
        entries,
        null_buffer(validity),
        false,
    )?))
}

/// Reads row `index` of a map column into any collection of pairs; `None` when null.
pub(crate) fn read_map<K, V, C>(array: &dyn Array, index: usize) -> Result<Option<C>>
where
    K: ArrowValue,
    V: ArrowValue,
    C: FromIterator<(K, V)>,
{
    let Some(map) = slot::<MapArray>(array, index, "map")? else {
        return Ok(None);
    };
    let entries = map.value(index);
    let [keys, values] = entries.columns() else {
        return Err(Error::type_error(
            "map entries must have exactly two children",
        ));
    };
    (0..entries.len())
        .map(|i| {
            let key = K::from_array(keys.as_ref(), i)?
                .ok_or_else(|| Error::type_error("map key must not be null"))?;
            let value = V::from_array(values.as_ref(), i)?
                .ok_or_else(|| Error::type_error("map value must not be null"))?;
            Ok((key, value))
        })
        .collect::<Result<C>>()
        .map(Some)
}

impl<K, V, S> ArrowValue for HashMap<K, V, S>
where
    K: ArrowValue + Eq + Hash,
    V: ArrowValue,
    S: BuildHasher + Default + Send + 'static,
{
    fn data_type() -> DataType {
        map_type::<K, V>()
    }

    fn to_array(items: Vec<Option<Self>>) -> Result<ArrayRef> {
        map_array(items)
    }

    fn from_array(array: &dyn Array, index: usize) -> Result<Option<Self>> {
        read_map::<K, V, Self>(array, index)
    }
}

impl<K: ArrowValue + Ord, V: ArrowValue> ArrowValue for BTreeMap<K, V> {
    fn data_type() -> DataType {
        map_type::<K, V>()
    }

    fn to_array(items: Vec<Option<Self>>) -> Result<ArrayRef> {
        map_array(items)
    }

    fn from_array(array: &dyn Array, index: usize) -> Result<Option<Self>> {
        read_map::<K, V, Self>(array, index)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::schema::Decimal;
    use crate::schema::test_support::round_trip;

    #[test]
    fn maps_round_trip() {
        let m: HashMap<String, Decimal<20, 4>> = [
            ("a".to_owned(), Decimal(1)),
            ("b".to_owned(), Decimal(-20_000)),
        ]
        .into();
        round_trip(vec![Some(m), None, Some(HashMap::new())]);
        let b: BTreeMap<String, Option<i64>> =
            [("x".to_owned(), None), ("y".to_owned(), Some(2))].into();
        round_trip(vec![Some(b)]);
        let nested: BTreeMap<i32, Vec<String>> = [(1, vec!["p".to_owned()]), (2, vec![])].into();
        round_trip(vec![Some(nested)]);
    }

    #[test]
    fn map_type_matches_pyarrow() {
        let DataType::Map(entries, sorted) = <HashMap<String, i64>>::data_type() else {
            panic!("not a map")
        };
        assert!(!sorted);
        assert_eq!(entries.name(), "entries");
        assert!(!entries.is_nullable());
        let DataType::Struct(fields) = entries.data_type() else {
            panic!("not a struct")
        };
        assert_eq!(
            (fields[0].name().as_str(), fields[0].is_nullable()),
            ("key", false)
        );
        assert_eq!(
            (fields[1].name().as_str(), fields[1].is_nullable()),
            ("value", true)
        );
    }

    #[test]
    fn null_value_and_wrong_types_are_errors() {
        let m: HashMap<String, Option<i64>> = [("x".to_owned(), None)].into();
        let array = <HashMap<String, Option<i64>>>::to_array(vec![Some(m)]).unwrap();
        assert!(<HashMap<String, i64>>::from_array(array.as_ref(), 0).is_err());
        assert!(<HashMap<String, String>>::from_array(array.as_ref(), 0).is_err());
        assert!(<HashMap<String, Option<i64>>>::from_array(array.as_ref(), 1).is_err());
        let list = <Vec<i64>>::to_array(vec![Some(vec![1])]).unwrap();
        assert!(<HashMap<i64, i64>>::from_array(list.as_ref(), 0).is_err());
    }
}
