//! `name=value` arguments -> the one-row parameters batch, parsed by each parameter's
//! declared Arrow type.
//!
//! Text goes through arrow's own parsers so every type arrow can read from text works the
//! same way it does elsewhere: `arrow-cast` for scalars (numbers, booleans, ISO dates,
//! times and timestamps, decimals, durations) and `arrow-json` for nested values (lists,
//! maps, structs written as JSON). Bytes are hex (`0x..`, `hex:..`, or bare hex) or
//! base64 (`base64:..`). `name=@file.arrows` takes the column `name` (or the only column)
//! of the first batch of an Arrow IPC file; a bare `@file.arrows` supplies every
//! parameter the file has a column for.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::failure::{Failure, Outcome};
use crate::input::read_ipc_batches;
use arrow_array::{Array, ArrayRef, BinaryArray, LargeBinaryArray, RecordBatch, StringArray};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use base64::Engine as _;
use vgi_rpc::client::MethodDescription;

/// Builds the parameters batch for `method` from the command-line arguments.
///
/// # Errors
/// A usage error naming the parameter and its type for an unknown, missing or mistyped
/// argument; a local error for an unreadable `@file`.
pub(crate) fn params_batch(method: &MethodDescription, args: &[String]) -> Outcome<RecordBatch> {
    let schema = &method.params;
    let mut given: BTreeMap<String, ArrayRef> = BTreeMap::new();
    for arg in args {
        if let Some(path) = arg.strip_prefix('@') {
            let batch = first_batch(path)?;
            for field in schema.fields() {
                if let Some(column) = batch.column_by_name(field.name()) {
                    given.insert(field.name().clone(), one_row(column, field)?);
                }
            }
            continue;
        }
        let Some((name, value)) = arg.split_once('=') else {
            return Err(Failure::usage(format!(
                "expected name=value, got `{arg}`; parameters: {}",
                describe_params(schema)
            )));
        };
        let Ok(field) = schema.field_with_name(name) else {
            return Err(Failure::usage(format!(
                "{}() has no parameter `{name}`; parameters: {}",
                method.name,
                describe_params(schema)
            )));
        };
        given.insert(name.to_owned(), parse_value(field, value)?);
    }
    let mut columns = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let column = match given.remove(field.name()) {
            Some(column) => column,
            None => missing(method, field)?,
        };
        columns.push(column);
    }
    RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &arrow_array::RecordBatchOptions::new().with_row_count(Some(1)),
    )
    .map_err(|e| Failure::usage(format!("cannot build the parameters: {e}")))
}

/// A parameter the user did not pass: its declared default, null when nullable, else an
/// error.
fn missing(method: &MethodDescription, field: &Field) -> Outcome<ArrayRef> {
    let ty = type_name(field.data_type());
    if let Some(text) = method.defaults.as_ref().and_then(|d| d.get(field.name())) {
        return json_value(field, text).map_err(|e| {
            Failure::usage(format!(
                "the default of `{}` ({ty}) is `{text}`, which cannot be read as {ty} ({e}); pass {}=VALUE",
                field.name(),
                field.name()
            ))
        });
    }
    if field.is_nullable() {
        return Ok(arrow_array::new_null_array(field.data_type(), 1));
    }
    let hint = if method.defaults.is_none() {
        " (this server's description carries no defaults, so every non-null parameter must be given)"
    } else {
        ""
    };
    Err(Failure::usage(format!(
        "missing parameter `{}` ({ty}) for {}(){hint}",
        field.name(),
        method.name
    )))
}

/// The parameter list as `name: type`, for messages.
pub(crate) fn describe_params(schema: &Schema) -> String {
    if schema.fields().is_empty() {
        return "(none)".to_owned();
    }
    schema
        .fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), type_name(f.data_type())))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Arrow type names as the reference spells them (`int64`, `string`, `list<item: int64>`).
pub(crate) fn type_name(ty: &DataType) -> String {
    match ty {
        DataType::Utf8 => "string".to_owned(),
        DataType::LargeUtf8 => "large_string".to_owned(),
        DataType::Boolean => "bool".to_owned(),
        DataType::Binary => "binary".to_owned(),
        DataType::Float32 => "float".to_owned(),
        DataType::Float64 => "double".to_owned(),
        DataType::List(f) => format!("list<{}: {}>", f.name(), type_name(f.data_type())),
        DataType::Struct(fields) => format!(
            "struct<{}>",
            fields
                .iter()
                .map(|f| format!("{}: {}", f.name(), type_name(f.data_type())))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        DataType::LargeList(f) => {
            format!("large_list<{}: {}>", f.name(), type_name(f.data_type()))
        }
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!(
                "map<{}, {}>",
                type_name(kv[0].data_type()),
                type_name(kv[1].data_type())
            ),
            other => format!("map<{}>", type_name(other)),
        },
        DataType::Dictionary(keys, values) => format!(
            "dictionary<values={}, indices={}>",
            type_name(values),
            type_name(keys)
        ),
        DataType::Timestamp(unit, tz) => {
            let unit = match unit {
                arrow_schema::TimeUnit::Second => "s",
                arrow_schema::TimeUnit::Millisecond => "ms",
                arrow_schema::TimeUnit::Microsecond => "us",
                arrow_schema::TimeUnit::Nanosecond => "ns",
            };
            match tz {
                Some(tz) => format!("timestamp[{unit}, tz={tz}]"),
                None => format!("timestamp[{unit}]"),
            }
        }
        other => other.to_string().to_lowercase(),
    }
}

/// One value for `field` from its command-line text.
pub(crate) fn parse_value(field: &Field, value: &str) -> Outcome<ArrayRef> {
    let ty = field.data_type();
    let bad = |why: &dyn std::fmt::Display| {
        Failure::usage(format!(
            "invalid value `{value}` for parameter `{}` ({}): {why}",
            field.name(),
            type_name(ty)
        ))
    };
    if let Some(path) = value.strip_prefix('@') {
        let batch = first_batch(path)?;
        let column = batch
            .column_by_name(field.name())
            .or_else(|| (batch.num_columns() == 1).then(|| batch.column(0)))
            .ok_or_else(|| bad(&format!("{path} has no column `{}`", field.name())))?;
        return one_row(column, field);
    }
    if field.is_nullable() && value == "null" && !is_text(ty) {
        return Ok(arrow_array::new_null_array(ty, 1));
    }
    match ty {
        DataType::Utf8 => Ok(Arc::new(StringArray::from(vec![value]))),
        DataType::Binary => Ok(Arc::new(BinaryArray::from_vec(vec![
            &parse_bytes(value).map_err(|e| bad(&e))?[..],
        ]))),
        DataType::LargeBinary => Ok(Arc::new(LargeBinaryArray::from_vec(vec![
            &parse_bytes(value).map_err(|e| bad(&e))?[..],
        ]))),
        DataType::List(_)
        | DataType::LargeList(_)
        | DataType::FixedSizeList(..)
        | DataType::Struct(_)
        | DataType::Map(..) => json_value(field, value).map_err(|e| bad(&e)),
        _ => {
            let text: ArrayRef = Arc::new(StringArray::from(vec![value]));
            let options = arrow_cast::CastOptions {
                safe: false,
                ..Default::default()
            };
            arrow_cast::cast_with_options(&text, ty, &options).map_err(|e| bad(&e))
        }
    }
}

fn is_text(ty: &DataType) -> bool {
    matches!(
        ty,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..)
    )
}

/// Hex (`0x..`, `hex:..` or bare) or base64 (`base64:..`).
fn parse_bytes(value: &str) -> Result<Vec<u8>, String> {
    if let Some(b64) = value.strip_prefix("base64:") {
        return base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("bad base64: {e}"));
    }
    let hex = value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("hex:"))
        .unwrap_or(value);
    if !hex.len().is_multiple_of(2) {
        return Err("hex needs an even number of digits (or use base64:..)".to_owned());
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| "not hex (use 0x.., hex:.. or base64:..)".to_owned())
        })
        .collect()
}

/// Reads a JSON value as one value of `field`'s type, with arrow's JSON reader.
pub(crate) fn json_value(field: &Field, json: &str) -> Result<ArrayRef, String> {
    let parsed: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let line = serde_json::json!({ field.name(): parsed }).to_string();
    let schema: SchemaRef = Arc::new(Schema::new(vec![field.clone()]));
    let mut reader = arrow_json::ReaderBuilder::new(schema)
        .build(std::io::Cursor::new(line))
        .map_err(|e| e.to_string())?;
    match reader.next() {
        Some(Ok(batch)) if batch.num_rows() == 1 => Ok(batch.column(0).clone()),
        Some(Err(e)) => Err(e.to_string()),
        _ => Err("no value".to_owned()),
    }
}

fn first_batch(path: &str) -> Outcome<RecordBatch> {
    read_ipc_batches(path)?
        .into_iter()
        .next()
        .ok_or_else(|| Failure::local(format!("{path} holds no batch")))
}

/// The first row of `column`, cast to the field's type when it differs.
fn one_row(column: &ArrayRef, field: &Field) -> Outcome<ArrayRef> {
    if column.is_empty() {
        return Err(Failure::usage(format!(
            "the file column for `{}` has no rows",
            field.name()
        )));
    }
    let value = column.slice(0, 1);
    if value.data_type() == field.data_type() {
        return Ok(value);
    }
    arrow_cast::cast(&value, field.data_type()).map_err(|e| {
        Failure::usage(format!(
            "the file column for `{}` is {}, not {}: {e}",
            field.name(),
            type_name(value.data_type()),
            type_name(field.data_type())
        ))
    })
}

/// One value as display text (for scalar unary results and headers).
pub(crate) fn display_value(array: &dyn Array, row: usize) -> String {
    match ArrayFormatter::try_new(array, &FormatOptions::default()) {
        Ok(f) => f.value(row).to_string(),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Date32Type, Int64Type};

    fn field(name: &str, ty: DataType) -> Field {
        Field::new(name, ty, false)
    }

    #[test]
    fn scalars_parse_by_declared_type() {
        let v = parse_value(&field("n", DataType::Int64), "-12").unwrap();
        assert_eq!(v.as_primitive::<Int64Type>().value(0), -12);
        let v = parse_value(&field("d", DataType::Date32), "2024-02-29").unwrap();
        assert_eq!(v.as_primitive::<Date32Type>().value(0), 19782);
        let v = parse_value(&field("b", DataType::Boolean), "true").unwrap();
        assert!(v.as_boolean().value(0));
        let v = parse_value(&field("x", DataType::Binary), "0x00ff").unwrap();
        assert_eq!(v.as_binary::<i32>().value(0), [0, 255]);
        let v = parse_value(&field("x", DataType::Binary), "base64:AP8=").unwrap();
        assert_eq!(v.as_binary::<i32>().value(0), [0, 255]);
    }

    #[test]
    fn mistyped_values_name_the_parameter_and_type() {
        let Err(Failure::Usage(msg)) = parse_value(&field("count", DataType::Int64), "abc") else {
            panic!("not a usage error");
        };
        assert!(msg.contains("`count`") && msg.contains("int64"), "{msg}");
    }

    #[test]
    fn type_names_read_like_pyarrow() {
        let map = DataType::Map(
            Arc::new(Field::new(
                "entries",
                DataType::Struct(
                    vec![
                        Field::new("key", DataType::Utf8, false),
                        Field::new("value", DataType::Int64, true),
                    ]
                    .into(),
                ),
                false,
            )),
            false,
        );
        assert_eq!(type_name(&map), "map<string, int64>");
        let dict = DataType::Dictionary(Box::new(DataType::Int16), Box::new(DataType::Utf8));
        assert_eq!(type_name(&dict), "dictionary<values=string, indices=int16>");
        let ts = DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, Some("UTC".into()));
        assert_eq!(type_name(&ts), "timestamp[us, tz=UTC]");
    }

    #[test]
    fn nested_values_are_json() {
        let list = DataType::List(Arc::new(Field::new("item", DataType::Int64, true)));
        let v = parse_value(&field("xs", list), "[1, 2, 3]").unwrap();
        assert_eq!(v.as_list::<i32>().value(0).len(), 3);
        let point = DataType::Struct(
            vec![
                Field::new("x", DataType::Float64, false),
                Field::new("y", DataType::Float64, false),
            ]
            .into(),
        );
        let v = parse_value(&field("p", point), r#"{"x": 1.5, "y": -2}"#).unwrap();
        assert_eq!(v.as_struct().num_columns(), 2);
    }
}
