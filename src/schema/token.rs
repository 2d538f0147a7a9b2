//! Type tokens: the textual spelling of Arrow types used in protocol hashes and in
//! `#[arrow = "..."]` type overrides.
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

use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, TimeUnit};

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

/// Parses a type token (see the module docs); `None` when it is not a valid token.
///
/// ```
/// use arrow_schema::DataType;
/// use vgi_rpc::schema::parse_type_token;
/// assert_eq!(parse_type_token("int32"), Some(DataType::Int32));
/// assert!(parse_type_token("list<item?:utf8>").is_some());
/// assert_eq!(parse_type_token("int33"), None);
/// ```
pub fn parse_type_token(token: &str) -> Option<DataType> {
    let mut parser = Parser { rest: token.trim() };
    let dt = parser.data_type(0)?;
    parser.rest.is_empty().then_some(dt)
}

/// Nesting deeper than this is rejected, so hostile input cannot overflow the stack.
const MAX_DEPTH: usize = 64;

struct Parser<'a> {
    rest: &'a str,
}

impl<'a> Parser<'a> {
    fn eat(&mut self, s: &str) -> Option<()> {
        self.rest = self.rest.strip_prefix(s)?;
        Some(())
    }

    fn try_eat(&mut self, s: &str) -> bool {
        self.eat(s).is_some()
    }

    /// Everything up to (not including) the first character in `stops`.
    fn until(&mut self, stops: &[char]) -> &'a str {
        let end = self.rest.find(stops).unwrap_or(self.rest.len());
        let (head, tail) = self.rest.split_at(end);
        self.rest = tail;
        head
    }

    fn number<T: std::str::FromStr>(&mut self) -> Option<T> {
        let end = self
            .rest
            .find(|c: char| !(c.is_ascii_digit() || c == '-'))
            .unwrap_or(self.rest.len());
        let (digits, tail) = self.rest.split_at(end);
        self.rest = tail;
        digits.parse().ok()
    }

    fn unit(&mut self) -> Option<TimeUnit> {
        Some(match self.until(&[')', ',']) {
            "s" => TimeUnit::Second,
            "ms" => TimeUnit::Millisecond,
            "us" => TimeUnit::Microsecond,
            "ns" => TimeUnit::Nanosecond,
            _ => return None,
        })
    }

    /// `name[?]:type`, returning the field under `name` (the token's spelling of the name).
    fn field(&mut self, depth: usize) -> Option<Field> {
        let name = self.until(&[':', ',', '<', '>', '(', ')']);
        self.eat(":")?;
        let (name, nullable) = match name.strip_suffix('?') {
            Some(name) => (name, true),
            None => (name, false),
        };
        Some(Field::new(name, self.data_type(depth + 1)?, nullable))
    }

    fn data_type(&mut self, depth: usize) -> Option<DataType> {
        if depth > MAX_DEPTH {
            return None;
        }
        let ident = self.until(&['(', '<', ',', '>', ')']);
        Some(match ident {
            "int8" => DataType::Int8,
            "int16" => DataType::Int16,
            "int32" => DataType::Int32,
            "int64" => DataType::Int64,
            "uint8" => DataType::UInt8,
            "uint16" => DataType::UInt16,
            "uint32" => DataType::UInt32,
            "uint64" => DataType::UInt64,
            "float32" => DataType::Float32,
            "float64" => DataType::Float64,
            "bool" => DataType::Boolean,
            "utf8" => DataType::Utf8,
            "large_utf8" => DataType::LargeUtf8,
            "binary" => DataType::Binary,
            "large_binary" => DataType::LargeBinary,
            "date32" => DataType::Date32,
            "date64" => DataType::Date64,
            "fixed_size_binary" => {
                self.eat("(")?;
                let n: i32 = self.number().filter(|n| *n >= 0)?;
                self.eat(")")?;
                DataType::FixedSizeBinary(n)
            }
            "decimal128" => {
                self.eat("(")?;
                let p: u8 = self.number().filter(|p| (1..=38).contains(p))?;
                self.eat(",")?;
                let s: i8 = self.number().filter(|s| i16::from(*s) <= i16::from(p))?;
                self.eat(")")?;
                DataType::Decimal128(p, s)
            }
            "time32" | "time64" | "duration" => {
                self.eat("(")?;
                let unit = self.unit()?;
                self.eat(")")?;
                match (ident, unit) {
                    ("time32", TimeUnit::Second | TimeUnit::Millisecond) => DataType::Time32(unit),
                    ("time64", TimeUnit::Microsecond | TimeUnit::Nanosecond) => {
                        DataType::Time64(unit)
                    }
                    ("duration", _) => DataType::Duration(unit),
                    _ => return None,
                }
            }
            "timestamp" => {
                self.eat("(")?;
                let unit = self.unit()?;
                let tz = if self.try_eat(",tz=") {
                    let tz = self.until(&[')']);
                    if tz.is_empty() {
                        return None;
                    }
                    Some(Arc::from(tz))
                } else {
                    None
                };
                self.eat(")")?;
                DataType::Timestamp(unit, tz)
            }
            "dictionary" => {
                self.eat("<index:")?;
                let key = self.data_type(depth + 1)?;
                self.eat(",value:")?;
                let value = self.data_type(depth + 1)?;
                self.eat(">")?;
                if !key.is_dictionary_key_type() {
                    return None;
                }
                DataType::Dictionary(Box::new(key), Box::new(value))
            }
            "list" => {
                self.eat("<")?;
                let item = self.field(depth)?;
                self.eat(">")?;
                DataType::List(Arc::new(item.with_name("item")))
            }
            "map" => {
                self.eat("<")?;
                let key = self.field(depth)?;
                self.eat(",")?;
                let value = self.field(depth)?;
                self.eat(">")?;
                if key.name() != "key" || value.name() != "value" {
                    return None;
                }
                let entries = Fields::from(vec![key, value]);
                DataType::Map(
                    Arc::new(Field::new("entries", DataType::Struct(entries), false)),
                    false,
                )
            }
            "struct" => {
                self.eat("<")?;
                let mut fields = Vec::new();
                if !self.try_eat(">") {
                    loop {
                        fields.push(self.field(depth)?);
                        if self.try_eat(">") {
                            break;
                        }
                        self.eat(",")?;
                    }
                }
                DataType::Struct(Fields::from(fields))
            }
            _ => return None,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ArrowValue;
    use std::collections::HashMap;

    fn preimage_types() -> Vec<String> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/protocol/conformance_protocol_hash_preimage.json"
        );
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let desc: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut types = Vec::new();
        for method in desc["methods"].as_array().unwrap() {
            for part in ["params", "result", "header"] {
                for field in method[part].as_array().into_iter().flatten() {
                    types.push(field["type"].as_str().unwrap().to_owned());
                }
            }
        }
        types
    }

    #[test]
    fn every_preimage_type_round_trips() {
        let types = preimage_types();
        for token in &types {
            let dt = parse_type_token(token).unwrap_or_else(|| panic!("cannot parse {token}"));
            assert_eq!(&type_token(&dt).unwrap(), token);
        }
    }

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
            assert_eq!(parse_type_token(token), Some(dt));
        }
    }

    #[test]
    fn other_tokens_round_trip() {
        for token in [
            "struct<x:float64,y?:float64>",
            "struct<>",
            "time32(s)",
            "time64(ns)",
            "timestamp(ns,tz=Europe/Paris)",
            "duration(ms)",
            "date64",
            "decimal128(38,-2)",
            "dictionary<index:int8,value:large_utf8>",
            "list<item:struct<a?:list<item?:utf8>>>",
            "map<key:int32,value:bool>",
        ] {
            let dt = parse_type_token(token).unwrap_or_else(|| panic!("cannot parse {token}"));
            assert_eq!(type_token(&dt).unwrap(), token);
        }
    }

    #[test]
    fn list_child_name_is_normalised() {
        let dt = DataType::List(Arc::new(Field::new("element", DataType::Int64, false)));
        assert_eq!(type_token(&dt).unwrap(), "list<item:int64>");
        let parsed = parse_type_token("list<element?:int64>").unwrap();
        assert_eq!(parsed, <Vec<i64>>::data_type());
    }

    #[test]
    fn invalid_tokens_are_rejected() {
        for token in [
            "",
            "int",
            "int32 x",
            "time32(us)",
            "time64(s)",
            "timestamp(xs)",
            "decimal128(20)",
            "decimal128(0,0)",
            "list<int64>",
            "list<item:int64",
            "map<a:utf8,b:int64>",
            "dictionary<index:utf8,value:utf8>",
            "struct<x:float64,>",
            "fixed_size_binary(-1)",
            "timestamp(us,tz=)",
        ] {
            assert_eq!(parse_type_token(token), None, "{token}");
        }
        let deep = format!("{}int64{}", "list<item:".repeat(1000), ">".repeat(1000));
        assert_eq!(parse_type_token(&deep), None);
        assert!(type_token(&DataType::Utf8View).is_err());
        assert!(type_token(&DataType::Null).is_err());
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(token in "[a-z0-9_<>(),:?=/ -]{0,40}") {
            if let Some(dt) = parse_type_token(&token) {
                let again = type_token(&dt).unwrap();
                proptest::prop_assert_eq!(parse_type_token(&again), Some(dt));
            }
        }
    }
}
