//! Client-side support for generated `{Trait}Client`s: one-row request batches built from
//! typed arguments on the exact schema the server declares, typed values read back out of
//! result batches, and client-side parameter defaults.
//!
//! Everything is driven by the same [`ProtocolSpec`] the generated server serves, so the
//! two ends cannot disagree about a schema: the client encodes with the server's own
//! parameter fields (Arrow type overrides and nullability included).

use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, RecordBatchOptions,
    StringArray, UInt64Array, new_null_array,
};
use arrow_cast::CastOptions;
use arrow_schema::{DataType, SchemaRef};

use crate::client::{CallOptions, Client, ClientStream, ExchangeStream, ProducerStream, Target};
use crate::schema::ArrowValue;
use crate::server::{MethodSpec, ProtocolSpec};
use crate::stream::{ExchangeState, ProducerState, StreamHeader};
use crate::{Error, Result};

/// The state every generated client holds: the connection, where calls go, the default
/// options sent with each call, and the protocol description (for request schemas).
pub struct ClientCore {
    client: Client,
    target: Target,
    options: CallOptions,
    spec: Arc<ProtocolSpec>,
}

impl ClientCore {
    /// A core calling `spec`'s protocol over `client`.
    pub fn new(client: Client, spec: ProtocolSpec) -> Self {
        ClientCore {
            client,
            target: Target::new(spec.name.clone(), spec.version.as_deref()),
            options: CallOptions::default(),
            spec: Arc::new(spec),
        }
    }

    /// The connection.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The connection, mutably.
    pub fn client_mut(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Gives the connection back.
    pub fn into_client(self) -> Client {
        self.client
    }

    /// The options sent with calls that are given none.
    pub fn options(&self) -> &CallOptions {
        &self.options
    }

    /// Replaces the options sent with later calls that are given none.
    pub fn set_options(&mut self, options: CallOptions) {
        self.options = options;
    }

    /// The protocol's description.
    pub fn spec(&self) -> &Arc<ProtocolSpec> {
        &self.spec
    }

    /// Starts the request batch of method `index`.
    ///
    /// # Errors
    /// Fails when the spec has no such method (generated code never asks for one).
    pub fn request(&self, index: usize) -> Result<Request> {
        Ok(Request::new(&self.method(index)?.params))
    }

    /// Calls unary method `index` and decodes its result.
    ///
    /// # Errors
    /// [`Error::Rpc`] for a remote error; transport errors; a type error when the result
    /// does not decode as `T`.
    pub fn unary<T: UnaryOutput>(
        &mut self,
        index: usize,
        params: &RecordBatch,
        options: Option<&CallOptions>,
    ) -> Result<T> {
        let method = self.method_name(index)?;
        let options = options.unwrap_or(&self.options);
        let answer = self.client.call(&self.target, &method, params, options)?;
        T::from_result(answer.batch.as_ref())
    }

    /// Opens producer method `index`; the header (if `H` is one) is decoded before this
    /// returns.
    ///
    /// # Errors
    /// [`Error::Rpc`] when the stream fails at init; transport errors.
    pub fn producer<S: ProducerState, H: StreamHeader>(
        &mut self,
        index: usize,
        params: &RecordBatch,
        options: Option<&CallOptions>,
    ) -> Result<ProducerStream<'_, H>> {
        ProducerStream::new(self.open::<H>(index, params, options)?)
    }

    /// Opens exchange method `index`; the header (if `H` is one) is decoded before this
    /// returns.
    ///
    /// # Errors
    /// As [`ClientCore::producer`].
    pub fn exchange<S: ExchangeState, H: StreamHeader>(
        &mut self,
        index: usize,
        params: &RecordBatch,
        options: Option<&CallOptions>,
    ) -> Result<ExchangeStream<'_, H>> {
        ExchangeStream::new(self.open::<H>(index, params, options)?)
    }

    /// Opens stream method `index`, reading its header first when `H` is one.
    fn open<H: StreamHeader>(
        &mut self,
        index: usize,
        params: &RecordBatch,
        options: Option<&CallOptions>,
    ) -> Result<ClientStream<'_>> {
        let method = self.method_name(index)?;
        let options = options.unwrap_or(&self.options);
        if H::header_schema().is_some() {
            self.client
                .open_stream_with_header(&self.target, &method, params, options)
        } else {
            self.client
                .open_stream(&self.target, &method, params, options)
        }
    }

    fn method(&self, index: usize) -> Result<&MethodSpec> {
        self.spec.methods.get(index).ok_or_else(|| {
            Error::protocol(format!(
                "protocol `{}` has no method #{index}",
                self.spec.name
            ))
        })
    }

    fn method_name(&self, index: usize) -> Result<String> {
        Ok(self.method(index)?.name.clone())
    }
}

/// A request batch under construction: one column per declared parameter, in order.
pub struct Request {
    schema: SchemaRef,
    columns: Vec<ArrayRef>,
}

impl Request {
    /// An empty request on the declared parameter schema.
    pub fn new(schema: &SchemaRef) -> Self {
        Request {
            schema: Arc::clone(schema),
            columns: Vec::with_capacity(schema.fields().len()),
        }
    }

    /// Appends the next argument, converted to its field's Arrow type when the field
    /// overrides the natural one (`#[vgi(arrow = "...")]`).
    ///
    /// # Errors
    /// Fails when the value cannot be encoded or does not fit the overridden type (an
    /// `i64` of 2^40 sent as `int32` is an error, never a silent null).
    pub fn arg<T: ArrowValue>(mut self, value: T) -> Result<Self> {
        let index = self.columns.len();
        let field =
            self.schema.fields().get(index).ok_or_else(|| {
                Error::protocol(format!("request has no parameter #{index} to fill"))
            })?;
        let column = T::to_top_level_array(vec![Some(value)])?;
        let column = convert(column, field.data_type(), field.name())?;
        self.columns.push(column);
        Ok(self)
    }

    /// The one-row request batch (zero rows on the empty schema of a method without
    /// parameters, as the reference client sends it).
    ///
    /// # Errors
    /// Fails when not every parameter was given.
    pub fn finish(self) -> Result<RecordBatch> {
        let rows = usize::from(!self.columns.is_empty());
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        Ok(RecordBatch::try_new_with_options(
            self.schema,
            self.columns,
            &options,
        )?)
    }
}

/// Casts `column` to `target` unless it already has that type; overflow is an error.
fn convert(column: ArrayRef, target: &DataType, name: &str) -> Result<ArrayRef> {
    if column.data_type() == target {
        return Ok(column);
    }
    let options = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    arrow_cast::cast_with_options(column.as_ref(), target, &options).map_err(|e| {
        Error::type_error(format!(
            "parameter '{name}' cannot be sent as {target}: {e}"
        ))
    })
}

/// The value of a client-side default, given as the JSON text stored in
/// `MethodSpec::defaults`, converted to `T` through Arrow (so `"ACTIVE"` becomes an enum
/// member, `42` an `i32` or a decimal, `null` a `None`).
///
/// # Errors
/// Fails when the JSON is not a scalar or does not convert to `T`.
pub fn default_arg<T: ArrowValue>(json: &str) -> Result<T> {
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| Error::type_error(format!("bad default {json}: {e}")))?;
    let target = T::top_level_data_type();
    let literal: ArrayRef = match value {
        serde_json::Value::Null => new_null_array(&target, 1),
        serde_json::Value::Bool(b) => Arc::new(BooleanArray::from(vec![b])),
        serde_json::Value::String(s) => Arc::new(StringArray::from(vec![s])),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Arc::new(Int64Array::from(vec![i])),
            (None, Some(u), _) => Arc::new(UInt64Array::from(vec![u])),
            (None, None, Some(f)) => Arc::new(Float64Array::from(vec![f])),
            _ => return Err(Error::type_error(format!("bad default number {n}"))),
        },
        other => {
            return Err(Error::type_error(format!(
                "default {other} is not a scalar"
            )));
        }
    };
    let column = convert(literal, &target, "default")?;
    T::from_top_level_array(column.as_ref(), 0)?
        .ok_or_else(|| Error::type_error(format!("default {json} is null for a non-Option type")))
}

/// A declared return type a typed client can read out of a unary answer: any
/// [`ArrowValue`] (the `result` column) or `()` (a void method).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a unary result type the typed client can decode",
    note = "unary methods return an `ArrowValue` or `()`; streams must be spelled \
            `Producer<..>` / `Exchange<..>` in the trait (not through a type alias) for the \
            client to recognise them"
)]
pub trait UnaryOutput: Sized {
    /// Decodes the answer's result batch (`None` when the server sent no value).
    ///
    /// # Errors
    /// A type error when the batch does not hold a `T`.
    fn from_result(batch: Option<&RecordBatch>) -> Result<Self>;
}

impl<T: ArrowValue> UnaryOutput for T {
    fn from_result(batch: Option<&RecordBatch>) -> Result<Self> {
        let batch = batch.ok_or_else(|| Error::type_error("the server returned no result"))?;
        let column = batch
            .column_by_name("result")
            .ok_or_else(|| Error::type_error("the result batch has no 'result' column"))?;
        if column.is_empty() {
            return Err(Error::type_error("the result batch has no rows"));
        }
        T::from_top_level_array(column.as_ref(), 0)?
            .ok_or_else(|| Error::type_error("the result is null but the type is not an Option"))
    }
}

impl UnaryOutput for () {
    fn from_result(_batch: Option<&RecordBatch>) -> Result<Self> {
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use arrow_schema::{Field, Schema};

    use super::*;
    use crate::private::param_field;
    use crate::schema::{Decimal, DictString, LargeString};

    fn schema(fields: Vec<Field>) -> SchemaRef {
        Arc::new(Schema::new(fields))
    }

    #[test]
    fn request_uses_the_declared_schema_and_overrides() {
        let declared = schema(vec![
            param_field::<i64>("n", Some(DataType::Int32)),
            param_field::<Option<String>>("s", None),
            param_field::<Vec<i64>>("v", None),
        ]);
        let batch = Request::new(&declared)
            .arg(7i64)
            .unwrap()
            .arg(None::<String>)
            .unwrap()
            .arg(vec![1i64, 2])
            .unwrap()
            .finish()
            .unwrap();
        assert_eq!(batch.schema(), declared);
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(batch.column(0).data_type(), &DataType::Int32);
        assert!(batch.column(1).is_null(0));
        assert_eq!(
            crate::private::arg::<i64>(&batch, 0, Some(&DataType::Int32)).unwrap(),
            7
        );
    }

    #[test]
    fn overflowing_override_is_an_error() {
        let declared = schema(vec![param_field::<i64>("n", Some(DataType::Int32))]);
        let err = Request::new(&declared).arg(1i64 << 40).err().unwrap();
        assert!(err.to_string().contains("parameter 'n'"), "{err}");
    }

    #[test]
    fn missing_or_extra_arguments_are_errors() {
        let declared = schema(vec![param_field::<i64>("n", None)]);
        assert!(Request::new(&declared).finish().is_err());
        assert!(
            Request::new(&declared)
                .arg(1i64)
                .unwrap()
                .arg(2i64)
                .is_err()
        );
        let none = Request::new(&schema(vec![])).finish().unwrap();
        assert_eq!((none.num_columns(), none.num_rows()), (0, 0));
    }

    #[test]
    fn defaults_convert_through_arrow() {
        assert_eq!(default_arg::<String>("\"-\"").unwrap(), "-");
        assert_eq!(default_arg::<i64>("42").unwrap(), 42);
        assert_eq!(default_arg::<u8>("42").unwrap(), 42);
        assert_eq!(default_arg::<f64>("1.5").unwrap(), 1.5);
        assert_eq!(default_arg::<f64>("2").unwrap(), 2.0);
        assert!(default_arg::<bool>("true").unwrap());
        assert_eq!(default_arg::<Option<i64>>("null").unwrap(), None);
        assert_eq!(default_arg::<Option<i64>>("3").unwrap(), Some(3));
        assert_eq!(&*default_arg::<LargeString>("\"x\"").unwrap(), "x");
        assert_eq!(&*default_arg::<DictString>("\"d\"").unwrap(), "d");
        assert_eq!(
            default_arg::<Decimal<10, 2>>("3").unwrap().to_string(),
            "3.00"
        );
        assert!(default_arg::<i64>("null").is_err());
        assert!(default_arg::<i8>("300").is_err());
        assert!(default_arg::<i64>("\"abc\"").is_err());
        assert!(default_arg::<i64>("[1]").is_err());
    }

    #[test]
    fn results_decode_by_name_and_type() {
        let spec = <i64 as crate::private::MethodOutput>::result_schema().unwrap();
        let batch =
            RecordBatch::try_new(spec, vec![Arc::new(Int64Array::from(vec![5])) as ArrayRef])
                .unwrap();
        assert_eq!(i64::from_result(Some(&batch)).unwrap(), 5);
        assert_eq!(<Option<i64>>::from_result(Some(&batch)).unwrap(), Some(5));
        assert!(String::from_result(Some(&batch)).is_err());
        assert!(i64::from_result(None).is_err());
        <()>::from_result(None).unwrap();
        let null = RecordBatch::try_new(
            schema(vec![Field::new("result", DataType::Int64, true)]),
            vec![new_null_array(&DataType::Int64, 1)],
        )
        .unwrap();
        assert!(i64::from_result(Some(&null)).is_err());
        assert_eq!(<Option<i64>>::from_result(Some(&null)).unwrap(), None);
    }
}
