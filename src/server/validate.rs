//! Request-schema validation, in the reference's order and with its messages: undeclared
//! columns, field count, names and order, exact Arrow types (child field names of lists and
//! maps ignored), top-level nullability, and nulls in non-null parameters.

use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, Schema, TimeUnit};

use crate::RpcError;
use crate::schema::types_equal_ignoring_child_names;

/// Checks a request batch against the declared parameter schema.
pub(crate) fn validate_params(
    method: &str,
    declared: &Schema,
    batch: &RecordBatch,
) -> crate::Result<()> {
    let got = batch.schema();
    let declared_names: Vec<&str> = declared
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    let undeclared: Vec<&str> = got
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .filter(|n| !declared_names.contains(n))
        .collect();
    if !undeclared.is_empty() {
        return Err(RpcError::type_error(format!(
            "Request carries parameter(s) this protocol does not declare: {}. Declared: {}. The caller and this worker disagree about the method signature \u{2014} check their protocol versions.",
            undeclared.join(", "),
            if declared_names.is_empty() { "(none)".to_owned() } else { declared_names.join(", ") }
        )).into());
    }
    if got.fields().len() != declared.fields().len() {
        let missing: Vec<&str> = declared_names
            .iter()
            .copied()
            .filter(|n| got.field_with_name(n).is_err())
            .collect();
        return Err(RpcError::type_error(format!(
            "{method}() missing required parameter(s): {}. Clients must send every declared parameter.",
            missing.join(", ")
        )).into());
    }
    for (want, have) in declared.fields().iter().zip(got.fields().iter()) {
        if want.name() != have.name() {
            return Err(RpcError::type_error(format!(
                "{method}() parameter order mismatch: expected '{}' but the request batch carried '{}'",
                want.name(),
                have.name()
            )).into());
        }
        if !types_equal_ignoring_child_names(want.data_type(), have.data_type()) {
            return Err(RpcError::type_error(format!(
                "{method}() parameter '{}' expected Arrow type {} but the request batch carried {}",
                want.name(),
                pyarrow_type_name(want.data_type()),
                pyarrow_type_name(have.data_type())
            ))
            .into());
        }
        if want.is_nullable() != have.is_nullable() {
            return Err(RpcError::type_error(format!(
                "{method}() parameter '{}' expected nullable={}, but the request batch carried nullable={}",
                want.name(),
                py_bool(want.is_nullable()),
                py_bool(have.is_nullable())
            )).into());
        }
    }
    if !declared.fields().is_empty() && batch.num_rows() != 1 {
        return Err(RpcError::type_error(format!(
            "{method}() request batch must have exactly 1 row, got {}",
            batch.num_rows()
        ))
        .into());
    }
    for (field, column) in declared.fields().iter().zip(batch.columns()) {
        if !field.is_nullable() && column.null_count() > 0 {
            return Err(RpcError::type_error(format!(
                "{method}() parameter '{}' is not nullable but the request carried null",
                field.name()
            ))
            .into());
        }
    }
    Ok(())
}

fn py_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

fn unit(u: &TimeUnit) -> &'static str {
    match u {
        TimeUnit::Second => "s",
        TimeUnit::Millisecond => "ms",
        TimeUnit::Microsecond => "us",
        TimeUnit::Nanosecond => "ns",
    }
}

/// pyarrow's spelling of a type (`string`, `large_string`, `int64`, `double`, ...).
pub(crate) fn pyarrow_type_name(dt: &DataType) -> String {
    match dt {
        DataType::Null => "null".into(),
        DataType::Boolean => "bool".into(),
        DataType::Int8 => "int8".into(),
        DataType::Int16 => "int16".into(),
        DataType::Int32 => "int32".into(),
        DataType::Int64 => "int64".into(),
        DataType::UInt8 => "uint8".into(),
        DataType::UInt16 => "uint16".into(),
        DataType::UInt32 => "uint32".into(),
        DataType::UInt64 => "uint64".into(),
        DataType::Float16 => "halffloat".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Utf8 => "string".into(),
        DataType::LargeUtf8 => "large_string".into(),
        DataType::Binary => "binary".into(),
        DataType::LargeBinary => "large_binary".into(),
        DataType::FixedSizeBinary(n) => format!("fixed_size_binary[{n}]"),
        DataType::Date32 => "date32[day]".into(),
        DataType::Date64 => "date64[ms]".into(),
        DataType::Time32(u) => format!("time32[{}]", unit(u)),
        DataType::Time64(u) => format!("time64[{}]", unit(u)),
        DataType::Timestamp(u, None) => format!("timestamp[{}]", unit(u)),
        DataType::Timestamp(u, Some(tz)) => format!("timestamp[{}, tz={tz}]", unit(u)),
        DataType::Duration(u) => format!("duration[{}]", unit(u)),
        DataType::Decimal128(p, s) => format!("decimal128({p}, {s})"),
        DataType::Dictionary(k, v) => format!(
            "dictionary<values={}, indices={}, ordered=0>",
            pyarrow_type_name(v),
            pyarrow_type_name(k)
        ),
        DataType::List(f) | DataType::LargeList(f) => {
            let prefix = if matches!(dt, DataType::List(_)) {
                "list"
            } else {
                "large_list"
            };
            let nn = if f.is_nullable() { "" } else { " not null" };
            format!(
                "{prefix}<{}: {}{nn}>",
                f.name(),
                pyarrow_type_name(f.data_type())
            )
        }
        DataType::Map(f, _) => match f.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!(
                "map<{}, {}>",
                pyarrow_type_name(kv[0].data_type()),
                pyarrow_type_name(kv[1].data_type())
            ),
            other => format!("map<{other}>"),
        },
        DataType::Struct(fields) => {
            let inner: Vec<String> = fields
                .iter()
                .map(|f| {
                    let nn = if f.is_nullable() { "" } else { " not null" };
                    format!("{}: {}{nn}", f.name(), pyarrow_type_name(f.data_type()))
                })
                .collect();
            format!("struct<{}>", inner.join(", "))
        }
        other => other.to_string(),
    }
}
