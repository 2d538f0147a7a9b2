//! Lists: `Vec<T>`, `HashSet<T>` and `BTreeSet<T>` are all `list<item: T>` with a nullable
//! item, as in the reference (`list[T]` and `frozenset[T]`).
//!
//! The item field is nullable whatever `T` is; reading a null item into a non-`Option` `T`
//! is a type error. Set order on the wire is the set's iteration order.

use std::collections::{BTreeSet, HashSet};
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, ListArray};
use arrow_buffer::{OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field};

use super::ArrowValue;
use super::util::{null_buffer, slot};
use crate::{Error, Result};

/// The Arrow type of a list of `T`: `list<item: T>` with a nullable item.
pub fn list_type<T: ArrowValue>() -> DataType {
    DataType::List(Arc::new(Field::new("item", T::data_type(), true)))
}

/// Builds a list column; each row is any collection of items.
pub(crate) fn list_array<T, I>(rows: Vec<Option<I>>) -> Result<ArrayRef>
where
    T: ArrowValue,
    I: IntoIterator<Item = T>,
{
    let mut offsets = Vec::with_capacity(rows.len() + 1);
    let mut validity = Vec::with_capacity(rows.len());
    let mut values = Vec::new();
    offsets.push(0i32);
    for row in rows {
        validity.push(row.is_some());
        if let Some(items) = row {
            values.extend(items.into_iter().map(Some));
        }
        let end = i32::try_from(values.len())
            .map_err(|_| Error::type_error("list column has more than 2^31 items"))?;
        offsets.push(end);
    }
    let child = T::to_array(values)?;
    let field = Arc::new(Field::new("item", T::data_type(), true));
    let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
    Ok(Arc::new(ListArray::try_new(
        field,
        offsets,
        child,
        null_buffer(validity),
    )?))
}

/// Reads row `index` of a list column into any collection; `None` when the row is null.
pub(crate) fn read_list<T, C>(array: &dyn Array, index: usize) -> Result<Option<C>>
where
    T: ArrowValue,
    C: FromIterator<T>,
{
    let Some(list) = slot::<ListArray>(array, index, "list")? else {
        return Ok(None);
    };
    let items = list.value(index);
    (0..items.len())
        .map(|i| {
            T::from_array(items.as_ref(), i)?
                .ok_or_else(|| Error::type_error("list item must not be null"))
        })
        .collect::<Result<C>>()
        .map(Some)
}

impl<T: ArrowValue> ArrowValue for Vec<T> {
    fn data_type() -> DataType {
        list_type::<T>()
    }

    fn to_array(items: Vec<Option<Self>>) -> Result<ArrayRef> {
        list_array(items)
    }

    fn from_array(array: &dyn Array, index: usize) -> Result<Option<Self>> {
        read_list::<T, Self>(array, index)
    }
}

impl<T, S> ArrowValue for HashSet<T, S>
where
    T: ArrowValue + Eq + Hash,
    S: BuildHasher + Default + Send + 'static,
{
    fn data_type() -> DataType {
        list_type::<T>()
    }

    fn to_array(items: Vec<Option<Self>>) -> Result<ArrayRef> {
        list_array(items)
    }

    fn from_array(array: &dyn Array, index: usize) -> Result<Option<Self>> {
        read_list::<T, Self>(array, index)
    }
}

impl<T: ArrowValue + Ord> ArrowValue for BTreeSet<T> {
    fn data_type() -> DataType {
        list_type::<T>()
    }

    fn to_array(items: Vec<Option<Self>>) -> Result<ArrayRef> {
        list_array(items)
    }

    fn from_array(array: &dyn Array, index: usize) -> Result<Option<Self>> {
        read_list::<T, Self>(array, index)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::schema::test_support::round_trip;
    use crate::schema::{Decimal, DictString};

    #[test]
    fn lists_round_trip() {
        round_trip(vec![Some(vec![1i64, 2]), None, Some(vec![])]);
        round_trip(vec![
            Some(vec![Some(1i64), None, Some(3)]),
            Some(vec![None]),
        ]);
        round_trip(vec![
            Some(vec![vec![1i64], vec![]]),
            Some(vec![vec![]]),
            Some(vec![]),
            None,
        ]);
        round_trip(vec![Some(vec!["a".to_owned(), String::new()])]);
        round_trip(vec![Some(vec![
            DictString::from("x"),
            "y".into(),
            "x".into(),
        ])]);
        round_trip(vec![Some(vec![Decimal::<20, 4>(12_345), Decimal(-1)])]);
        round_trip::<Vec<i64>>(vec![]);
    }

    #[test]
    fn list_item_is_always_nullable_and_named_item() {
        let DataType::List(field) = <Vec<i64>>::data_type() else {
            panic!("not a list")
        };
        assert_eq!(field.name(), "item");
        assert!(field.is_nullable());
        assert_eq!(<Vec<Option<i64>>>::data_type(), <Vec<i64>>::data_type());
    }

    #[test]
    fn null_item_into_non_option_is_an_error() {
        let array = <Vec<Option<i64>>>::to_array(vec![Some(vec![Some(1), None])]).unwrap();
        assert!(<Vec<i64>>::from_array(array.as_ref(), 0).is_err());
    }

    #[test]
    fn sets_round_trip() {
        let set: HashSet<i64> = [3, 1, 2].into_iter().collect();
        round_trip(vec![Some(set), None]);
        let tree: BTreeSet<String> = ["b".to_owned(), "a".to_owned()].into_iter().collect();
        round_trip(vec![Some(tree)]);
        let array = <BTreeSet<i64>>::to_array(vec![Some([1, 2].into())]).unwrap();
        assert_eq!(
            <Vec<i64>>::from_array(array.as_ref(), 0).unwrap(),
            Some(vec![1, 2])
        );
    }

    #[test]
    fn wrong_types_are_errors() {
        let array = <Vec<String>>::to_array(vec![Some(vec!["x".into()])]).unwrap();
        assert!(<Vec<i64>>::from_array(array.as_ref(), 0).is_err());
        assert!(<Vec<String>>::from_array(array.as_ref(), 1).is_err());
        let flat = i64::to_array(vec![Some(1)]).unwrap();
        assert!(<Vec<i64>>::from_array(flat.as_ref(), 0).is_err());
    }
}
