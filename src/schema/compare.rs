//! Exact type comparison for request validation.
//!
//! The reference validates request schemas exactly (`int32` is not `int64`, `large_utf8`
//! is not `utf8`, an `int8`-keyed dictionary is not an `int16`-keyed one, child
//! nullability must match), but different Arrow writers name list and map children
//! differently (`item`/`element`, `entries`/`key_value`, ...), so those names are ignored.

use arrow_schema::{DataType, Field};

/// Whether `a` and `b` are the same type, ignoring only the names of list and map children
/// (and a map's `keys_sorted` flag). Struct field names, all nullability flags, widths,
/// units, timezones and dictionary key types must match. Field metadata is ignored.
pub fn types_equal_ignoring_child_names(a: &DataType, b: &DataType) -> bool {
    match (a, b) {
        (DataType::List(x), DataType::List(y))
        | (DataType::LargeList(x), DataType::LargeList(y))
        | (DataType::ListView(x), DataType::ListView(y))
        | (DataType::LargeListView(x), DataType::LargeListView(y)) => unnamed_fields_equal(x, y),
        (DataType::FixedSizeList(x, n), DataType::FixedSizeList(y, m)) => {
            n == m && unnamed_fields_equal(x, y)
        }
        (DataType::Map(x, _), DataType::Map(y, _)) => match (x.data_type(), y.data_type()) {
            (DataType::Struct(xs), DataType::Struct(ys)) => {
                x.is_nullable() == y.is_nullable()
                    && xs.len() == ys.len()
                    && xs
                        .iter()
                        .zip(ys.iter())
                        .all(|(f, g)| unnamed_fields_equal(f, g))
            }
            _ => unnamed_fields_equal(x, y),
        },
        (DataType::Struct(xs), DataType::Struct(ys)) => {
            xs.len() == ys.len()
                && xs
                    .iter()
                    .zip(ys.iter())
                    .all(|(f, g)| f.name() == g.name() && unnamed_fields_equal(f, g))
        }
        (DataType::Dictionary(xk, xv), DataType::Dictionary(yk, yv)) => {
            xk == yk && types_equal_ignoring_child_names(xv, yv)
        }
        (DataType::RunEndEncoded(xr, xv), DataType::RunEndEncoded(yr, yv)) => {
            unnamed_fields_equal(xr, yr) && unnamed_fields_equal(xv, yv)
        }
        _ => a == b,
    }
}

fn unnamed_fields_equal(a: &Field, b: &Field) -> bool {
    a.is_nullable() == b.is_nullable()
        && types_equal_ignoring_child_names(a.data_type(), b.data_type())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use arrow_schema::{Fields, TimeUnit};

    use super::*;
    use crate::ArrowValue;

    fn list(name: &str, dt: DataType, nullable: bool) -> DataType {
        DataType::List(Arc::new(Field::new(name, dt, nullable)))
    }

    fn map(entries: &str, key: &str, value: &str, sorted: bool) -> DataType {
        let kv = Fields::from(vec![
            Field::new(key, DataType::Utf8, false),
            Field::new(value, DataType::Int64, true),
        ]);
        DataType::Map(
            Arc::new(Field::new(entries, DataType::Struct(kv), false)),
            sorted,
        )
    }

    #[test]
    fn child_names_are_ignored() {
        let eq = types_equal_ignoring_child_names;
        assert!(eq(
            &list("item", DataType::Int64, true),
            &list("element", DataType::Int64, true)
        ));
        assert!(eq(
            &map("entries", "key", "value", false),
            &map("key_value", "k", "v", true)
        ));
        assert!(eq(
            &<HashMap<String, i64>>::data_type(),
            &map("kv", "a", "b", false)
        ));
        let nested_a = list("item", list("item", DataType::Int64, true), true);
        let nested_b = list("element", list("x", DataType::Int64, true), true);
        assert!(eq(&nested_a, &nested_b));
    }

    #[test]
    fn everything_else_must_match() {
        let eq = types_equal_ignoring_child_names;
        assert!(!eq(&DataType::Int32, &DataType::Int64));
        assert!(!eq(&DataType::LargeUtf8, &DataType::Utf8));
        assert!(!eq(
            &list("item", DataType::Int64, true),
            &list("item", DataType::Int64, false)
        ));
        assert!(!eq(
            &list("item", DataType::Int64, true),
            &list("item", DataType::Int32, true)
        ));
        let dict = |k: DataType| DataType::Dictionary(Box::new(k), Box::new(DataType::Utf8));
        assert!(eq(&dict(DataType::Int16), &dict(DataType::Int16)));
        assert!(!eq(&dict(DataType::Int8), &dict(DataType::Int16)));
        let point = |y: &str, nullable: bool| {
            DataType::Struct(Fields::from(vec![
                Field::new("x", DataType::Float64, false),
                Field::new(y, DataType::Float64, nullable),
            ]))
        };
        assert!(eq(&point("y", false), &point("y", false)));
        assert!(!eq(&point("y", false), &point("z", false)));
        assert!(!eq(&point("y", false), &point("y", true)));
        let ts = |tz: Option<&str>| DataType::Timestamp(TimeUnit::Microsecond, tz.map(Into::into));
        assert!(!eq(&ts(None), &ts(Some("UTC"))));
        assert!(!eq(
            &DataType::Decimal128(20, 4),
            &DataType::Decimal128(18, 4)
        ));
    }
}
