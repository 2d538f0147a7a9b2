//! Rust types <-> Arrow types and values.
//!
//! Every type that can appear in a method signature implements [`ArrowValue`]: it names its
//! Arrow [`DataType`](arrow_schema::DataType), builds a column from values, and reads one
//! value back out of a column. The `#[service]` macro never looks at type names; it only
//! calls these traits, so users add their own types by implementing them (or deriving
//! [`ArrowRecord`] / [`ArrowEnum`]).
//!
//! The mapping follows the reference implementation:
//!
//! | Rust | Arrow |
//! |---|---|
//! | `i8`..`i64`, `u8`..`u64`, `f32`, `f64`, `bool` | `int8`..`uint64`, `float32`, `float64`, `bool` |
//! | `String`, [`LargeString`], [`DictString`] | `utf8`, `large_utf8`, `dictionary<int16, utf8>` |
//! | [`Bytes`], [`LargeBinary`], `[u8; N]` | `binary`, `large_binary`, `fixed_size_binary(N)` |
//! | [`Decimal<P, S>`](Decimal) | `decimal128(P, S)` |
//! | chrono `NaiveDate`, `NaiveTime`, `NaiveDateTime`, `DateTime<Utc>`, `TimeDelta` | `date32`, `time64(us)`, `timestamp(us)`, `timestamp(us, tz=UTC)`, `duration(us)` |
//! | `Option<T>` | `T`, nullable field |
//! | `Vec<T>`, `HashSet<T>`, `BTreeSet<T>` | `list<item: T>` (item nullable) |
//! | `HashMap<K, V>`, `BTreeMap<K, V>` | `map<key: K, value: V>` (value nullable) |
//! | `RecordBatch`, `Schema` | `binary` (an IPC stream / one schema message) |
//! | records ([`ArrowRecord`]) | `struct<...>` nested, `binary` IPC stream at the top level |
//! | enums ([`ArrowEnum`]) | `dictionary<int16, utf8>` holding the member name |
//!
//! `Vec<u8>` is a list of `uint8`; use [`Bytes`] for a byte string ([`Blob`] to read and
//! send one without copying it).
//!
//! [`type_token`] spells types as the protocol hash does,
//! [`types_equal_ignoring_child_names`] is the exact comparison used to validate requests,
//! and [`reflection`] holds the records of the protocol that describes a server.

mod blob;
mod bytes;
mod compare;
mod decimal;
mod embedded;
mod enums;
mod maps;
mod nested;
mod option;
mod primitive;
mod record;
pub mod reflection;
mod temporal;
mod text;
mod token;
mod util;
mod value;

#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod test_support;

pub use blob::Blob;
pub use bytes::{Bytes, LargeBinary};
pub use compare::types_equal_ignoring_child_names;
pub use decimal::Decimal;
pub use enums::{enum_data_type, enum_from_array, enum_to_array};
pub use maps::map_type;
pub use nested::list_type;
pub use record::{
    record_from_ipc_array, record_from_struct_array, record_struct_type, record_to_ipc_array,
    record_to_struct_array,
};
pub use text::{DictString, LargeString, dictionary_utf8_type};
pub use token::type_token;
pub use value::{ArrowEnum, ArrowRecord, ArrowValue, RecordRows};
