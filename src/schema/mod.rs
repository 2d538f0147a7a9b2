//! Rust types <-> Arrow types and values.
//!
//! Every type that can appear in a method signature implements [`ArrowValue`]: it names its
//! Arrow [`DataType`], builds a column from values, and reads one value back out of a
//! column. The `#[service]` macro never looks at type names; it only calls these traits, so
//! users add their own types by implementing them (or deriving [`ArrowRecord`] /
//! [`ArrowEnum`]).
//!
//! The mapping follows the reference implementation: `String` is `utf8`, `i64` is `int64`,
//! `Vec<T>` is `list<item: T>` with a nullable item, `HashMap<K, V>` is a map with a nullable
//! value, `Option<T>` makes the field nullable, records are struct columns when nested and a
//! nested IPC stream in a `binary` column at the top level of a signature, enums are
//! `dictionary<int16, utf8>` holding the member name.

mod value;

pub use value::{ArrowEnum, ArrowRecord, ArrowValue};

/// Parses a type token as used in protocol hashes (`int32`, `large_utf8`,
/// `timestamp(us,tz=UTC)`, `list<item?:int64>`, ...).
pub fn parse_type_token(_token: &str) -> Option<arrow_schema::DataType> {
    None
}
