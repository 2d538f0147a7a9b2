//! Type tokens: the textual spelling of Arrow types used in protocol hashes. The
//! `#[vgi(arrow = "...")]` parameter overrides of `#[service]` use the same spelling; the
//! macro parses them at compile time into the `DataType` itself, so nothing parses tokens
//! at run time.
//!
//! | Arrow | token |
//! |---|---|
//! | integers, floats | `int8`..`int64`, `uint8`..`uint64`, `float32`, `float64` |
//! | boolean, strings, bytes | `bool`, `utf8`, `large_utf8`, `binary`, `large_binary` |
//! | fixed-size / decimal | `fixed_size_binary(8)`, `decimal128(20,4)` |
//! | temporal | `date32`, `date64`, `time32(ms)`, `time64(us)`, `timestamp(us)`, `timestamp(us,tz=UTC)`, `duration(us)` |
//! | dictionary | `dictionary<index:int16,value:utf8>` |
//! | list | `list<item?:int64>` (`?` iff the item is nullable; the child is always called `item`) |
//! | map | `map<key:utf8,value?:int64>` |
//! | struct | `struct<x:float64,y?:float64>` (`?` iff the field is nullable) |
//!
//! Time units are spelled `s`, `ms`, `us`, `ns`. The spelling is pinned by the reference's
//! protocol-hash preimage (`fixtures/conformance_protocol_hash_preimage.json`).

use arrow_schema::{DataType, Field, TimeUnit};

use crate::{Error, Result};

/// The token of `dt` (see the module docs).
///
/// # Errors
/// [`Error::Type`] for types without a token (unions, views, run-end encoded, ...).
pub fn type_token(dt: &DataType) -> Result<String> {
    let simple = match dt {
        DataType::Int8 => "int8",
        DataType::Int16 => "int16",
        DataType::Int32 => "int32",
        DataType::Int64 => "int64",
        DataType::UInt8 => "uint8",
        DataType::UInt16 => "uint16",
        DataType::UInt32 => "uint32",
        DataType::UInt64 => "uint64",
        DataType::Float32 => "float32",
        DataType::Float64 => "float64",
        DataType::Boolean => "bool",
        DataType::Utf8 => "utf8",
        DataType::LargeUtf8 => "large_utf8",
        DataType::Binary => "binary",
        DataType::LargeBinary => "large_binary",
        DataType::Date32 => "date32",
        DataType::Date64 => "date64",
        _ => "",
    };
    if !simple.is_empty() {
        return Ok(simple.to_owned());
    }
    Ok(match dt {
        DataType::FixedSizeBinary(n) => format!("fixed_size_binary({n})"),
        DataType::Decimal128(p, s) => format!("decimal128({p},{s})"),
        DataType::Time32(unit) => format!("time32({})", unit_token(unit)),
        DataType::Time64(unit) => format!("time64({})", unit_token(unit)),
        DataType::Timestamp(unit, None) => format!("timestamp({})", unit_token(unit)),
        DataType::Timestamp(unit, Some(tz)) => format!("timestamp({},tz={tz})", unit_token(unit)),
        DataType::Duration(unit) => format!("duration({})", unit_token(unit)),
        DataType::Dictionary(key, value) => {
            format!(
                "dictionary<index:{},value:{}>",
                type_token(key)?,
                type_token(value)?
            )
        }
        DataType::List(item) => format!("list<{}>", field_token("item", item)?),
        DataType::Map(entries, _) => {
            let DataType::Struct(kv) = entries.data_type() else {
                return Err(Error::type_error(format!("malformed map type {dt}")));
            };
            let [key, value] = kv.iter().collect::<Vec<_>>()[..] else {
                return Err(Error::type_error(format!("malformed map type {dt}")));
            };
            format!(
                "map<{},{}>",
                field_token("key", key)?,
                field_token("value", value)?
            )
        }
        DataType::Struct(fields) => {
            let parts = fields
                .iter()
                .map(|f| field_token(f.name(), f))
                .collect::<Result<Vec<_>>>()?;
            format!("struct<{}>", parts.join(","))
        }
        other => {
            return Err(Error::type_error(format!(
                "no type token for arrow type {other}"
            )));
        }
    })
}

fn field_token(name: &str, field: &Field) -> Result<String> {
    let q = if field.is_nullable() { "?" } else { "" };
    Ok(format!("{name}{q}:{}", type_token(field.data_type())?))
}

fn unit_token(unit: &TimeUnit) -> &'static str {
    match unit {
        TimeUnit::Second => "s",
        TimeUnit::Millisecond => "ms",
        TimeUnit::Microsecond => "us",
        TimeUnit::Nanosecond => "ns",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use arrow_schema::Fields;

    use super::*;
    use crate::ArrowValue;
    use std::collections::HashMap;

    #[test]
    fn rust_types_have_the_reference_tokens() {
        let cases: Vec<(DataType, &str)> = vec![
            (<Vec<i64>>::data_type(), "list<item?:int64>"),
            (
                <Vec<Vec<i64>>>::data_type(),
                "list<item?:list<item?:int64>>",
            ),
            (
                <HashMap<String, i64>>::data_type(),
                "map<key:utf8,value?:int64>",
            ),
            (
                crate::schema::DictString::data_type(),
                "dictionary<index:int16,value:utf8>",
            ),
            (
                <chrono::DateTime<chrono::Utc>>::data_type(),
                "timestamp(us,tz=UTC)",
            ),
            (chrono::NaiveDateTime::data_type(), "timestamp(us)"),
            (chrono::NaiveTime::data_type(), "time64(us)"),
            (chrono::TimeDelta::data_type(), "duration(us)"),
            (
                <crate::schema::Decimal<20, 4>>::data_type(),
                "decimal128(20,4)",
            ),
            (<[u8; 8]>::data_type(), "fixed_size_binary(8)"),
            (crate::schema::LargeString::data_type(), "large_utf8"),
            (bool::data_type(), "bool"),
        ];
        for (dt, token) in cases {
            assert_eq!(type_token(&dt).unwrap(), token);
        }
    }

    #[test]
    fn other_types_have_tokens() {
        let field = |name: &str, dt: DataType, nullable| Field::new(name, dt, nullable);
        let list = |item: Field| DataType::List(Arc::new(item));
        let cases: Vec<(DataType, &str)> = vec![
            (
                DataType::Struct(Fields::from(vec![
                    field("x", DataType::Float64, false),
                    field("y", DataType::Float64, true),
                ])),
                "struct<x:float64,y?:float64>",
            ),
            (DataType::Struct(Fields::empty()), "struct<>"),
            (DataType::Time32(TimeUnit::Second), "time32(s)"),
            (DataType::Time64(TimeUnit::Nanosecond), "time64(ns)"),
            (
                DataType::Timestamp(TimeUnit::Nanosecond, Some("Europe/Paris".into())),
                "timestamp(ns,tz=Europe/Paris)",
            ),
            (DataType::Duration(TimeUnit::Millisecond), "duration(ms)"),
            (DataType::Date64, "date64"),
            (DataType::Decimal128(38, -2), "decimal128(38,-2)"),
            (
                DataType::Dictionary(Box::new(DataType::Int8), Box::new(DataType::LargeUtf8)),
                "dictionary<index:int8,value:large_utf8>",
            ),
            (
                list(field(
                    "item",
                    DataType::Struct(Fields::from(vec![field(
                        "a",
                        list(field("item", DataType::Utf8, true)),
                        true,
                    )])),
                    false,
                )),
                "list<item:struct<a?:list<item?:utf8>>>",
            ),
            (
                crate::schema::map_type::<i32, bool>(),
                "map<key:int32,value?:bool>",
            ),
        ];
        for (dt, token) in cases {
            assert_eq!(type_token(&dt).unwrap(), token);
        }
    }

    #[test]
    fn list_child_name_is_normalised() {
        let dt = DataType::List(Arc::new(Field::new("element", DataType::Int64, false)));
        assert_eq!(type_token(&dt).unwrap(), "list<item:int64>");
    }

    #[test]
    fn types_without_a_token_are_errors() {
        assert!(type_token(&DataType::Utf8View).is_err());
        assert!(type_token(&DataType::Null).is_err());
    }
}
