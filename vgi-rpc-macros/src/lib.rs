//! Procedural macros for [vgi-rpc](https://docs.rs/vgi-rpc). Use them through the `vgi_rpc`
//! re-exports (`vgi_rpc::service`, `vgi_rpc::ArrowRecord`, `vgi_rpc::ArrowEnum`); the
//! generated code names items of `::vgi_rpc` only.
//!
//! Each macro runs in three steps, each in its own module: *parse* the Rust item into a
//! small model (collecting every problem with its span), *validate* what can only be judged
//! as a whole (such as duplicate wire names), then *codegen* from the model. When
//! any step fails the user's item is still emitted, next to one `compile_error!` per
//! problem, so a single mistake produces a single message.
//!
//! - [`macro@service`]: a trait becomes a protocol: a `{Trait}Server` dispatcher, a
//!   `ProtocolSpec` describing its methods, and a typed `{Trait}Client`.
//! - [`derive@ArrowRecord`]: a struct with named fields becomes a record (a schema, rows
//!   as batches, a struct column when nested).
//! - [`derive@ArrowEnum`]: a fieldless enum becomes a `dictionary<int16, utf8>` of member
//!   names.

mod arrow_type;
mod attrs;
mod derive;
mod diag;
mod service;

use proc_macro::TokenStream;

/// Turns a trait into a vgi-rpc protocol: a server dispatcher, a description and a typed
/// client.
///
/// ```
/// use vgi_rpc::server::{MethodKind, Service};
/// use vgi_rpc::{CallContext, LogLevel};
///
/// /// A calculator.
/// #[vgi_rpc::service(protocol = "Calculator", version = "1.0.0")]
/// pub trait Calculator: Send + Sync + 'static {
///     /// Add two numbers.
///     fn add(&self, a: f64, b: f64) -> vgi_rpc::Result<f64>;
///     /// Join two strings.
///     fn join(
///         &self,
///         ctx: &CallContext,
///         left: String,
///         right: String,
///         #[vgi(default = "-")] separator: String,
///     ) -> vgi_rpc::Result<String>;
///     /// Narrowed on the wire, `i64` in Rust.
///     #[vgi(name = "echo_int32")]
///     fn echo(&self, #[vgi(arrow = "int32")] value: i64) -> vgi_rpc::Result<i64>;
/// }
///
/// struct Calc;
///
/// impl Calculator for Calc {
///     fn add(&self, a: f64, b: f64) -> vgi_rpc::Result<f64> {
///         Ok(a + b)
///     }
///
///     fn join(&self, ctx: &CallContext, left: String, right: String, separator: String)
///         -> vgi_rpc::Result<String>
///     {
///         ctx.log(LogLevel::Info, "joining");
///         Ok(format!("{left}{separator}{right}"))
///     }
///
///     fn echo(&self, value: i64) -> vgi_rpc::Result<i64> {
///         Ok(value)
///     }
/// }
///
/// // The description needs no implementation...
/// let spec = CalculatorServer::spec();
/// assert_eq!(spec.name, "Calculator");
/// assert_eq!(spec.methods[1].defaults, [None, None, Some("\"-\"".to_owned())]);
/// assert_eq!(spec.methods[2].name, "echo_int32");
/// assert_eq!(spec.methods[0].kind, MethodKind::Unary);
///
/// // ...the server wraps one, ready for any transport.
/// let server = CalculatorServer::new(Calc);
/// assert_eq!(server.spec().doc, "A calculator.");
///
/// // ...and the client calls it with the same Rust types, e.g.
/// // `CalculatorClient::connect("exec:calc --worker")?.add(2.0, 3.0)?`.
/// let _: fn(&mut CalculatorClient, f64, f64) -> vgi_rpc::Result<f64> = CalculatorClient::add;
/// let _: fn(&mut CalculatorClient, String, String) -> vgi_rpc::Result<String> =
///     CalculatorClient::join_with_defaults;
/// ```
///
/// # Arguments
/// `protocol = "Name"` is the wire name (default: the trait's name); `version = "1.0.0"`
/// is optional and, when given, requests must carry a matching `MAJOR.MINOR`.
///
/// # Methods
/// Every method takes `&self` and returns `Result<T>` (any path whose last segment has one
/// type argument, such as `vgi_rpc::Result<T>`). `T` decides the method's kind through
/// the runtime's `MethodOutput` trait: an `ArrowValue` is a unary result, `()` a void
/// result, `Producer<S, H>` / `Exchange<S, H>` a stream with header record `H`. Methods are
/// numbered in declaration order. `async`, `unsafe` and generic methods are rejected, and
/// the trait may contain nothing but methods.
///
/// # Parameters
/// A parameter of reference type (`ctx: &CallContext`, at most one, anywhere) receives the
/// call context. Every other parameter is an owned `ArrowValue` named by a plain
/// identifier; it becomes a request field of that name (`r#` removed), in declaration
/// order.
///
/// # Helper attributes
/// Stripped from the trait that is emitted:
/// - method `#[vgi(name = "wire_name")]`: the method's name on the wire;
/// - parameter `#[vgi(default = <literal>)]`: a client-side default, a string, number,
///   `true`/`false` or `None`, stored as JSON text in `MethodSpec::defaults`;
/// - parameter `#[vgi(arrow = "<type token>")]`: the field's Arrow type, converted to
///   and from the Rust type. Tokens are checked at compile time: `int8`..`int64`,
///   `uint8`..`uint64`, `float32`, `float64`, `bool`, `utf8`, `large_utf8`, `binary`,
///   `large_binary`, `fixed_size_binary(N)`, `decimal128(P,S)`, `date32`, `date64`,
///   `time32(s|ms)`, `time64(us|ns)`, `timestamp(UNIT)`, `timestamp(UNIT,tz=ZONE)`,
///   `duration(UNIT)`, `dictionary<index:INT,value:utf8|large_utf8>`.
///
/// # Generated items
/// `{Trait}Server<T: ?Sized>` (the trait's visibility) with `new(T)`, `from_arc(Arc<T>)`,
/// the associated function `{Trait}Server::spec()` returning the
/// `vgi_rpc::server::ProtocolSpec` (doc comments become its docs), `Clone`, and
/// `vgi_rpc::server::Service` for every `T: Trait + Send + Sync + 'static`.
///
/// `{Trait}Client` (same visibility), a typed proxy over `vgi_rpc::client::Client`:
/// - `connect(address)` (`exec:<command line>`, `unix:<path>`, `tcp://host:port`),
///   `connect_with(address, ConnectOptions)` (e.g. shared memory with
///   `ConnectOptions::with_shm`), `from_client(Client)`, `client()` / `client_mut()` (e.g.
///   for `set_log_handler`) / `into_client()`;
/// - `with_options(CallOptions)` (builder) and `set_options` / `options`: the options
///   (timeout, metadata, cancel handle) sent with every later call;
/// - one method per trait method, same Rust name and parameter types, without the call
///   context, taking `&mut self` (one call at a time per connection). A unary method
///   returns `Result<T>`; `Producer<S, H>` returns a `vgi_rpc::client::ProducerStream<'_,
///   H>` (an iterator of `Result<RecordBatch>` whose `header()` is the decoded `H`, ready
///   before iterating); `Exchange<S, H>` returns a `vgi_rpc::client::ExchangeStream<'_, H>`
///   (`exchange`, `cancel`, `close`, `header`). Stream kinds are recognised by the spelling
///   `Producer<..>` / `Exchange<..>` (not through a type alias);
/// - `{method}_with_defaults` for a method with `#[vgi(default = ..)]` parameters: it
///   takes only the other parameters and sends the declared defaults.
///
/// Remote errors come back as `vgi_rpc::Error::Rpc`. A trait method whose Rust name would
/// clash with one of the client's own methods (`connect`, `options`, ...) is rejected;
/// rename it and keep the wire name with `#[vgi(name = "...")]`.
#[proc_macro_attribute]
pub fn service(attr: TokenStream, item: TokenStream) -> TokenStream {
    service::expand(attr.into(), item.into()).into()
}

/// Derives `vgi_rpc::ArrowRecord` and `vgi_rpc::ArrowValue` for a struct with named fields
/// (or none).
///
/// The schema has one field per struct field, in declaration order, nullable exactly for
/// `Option` fields; `#[vgi(rename = "wire_name")]` renames one. Nested in another value
/// the record is a struct column; as a whole parameter or result it travels as an IPC
/// stream in a `binary` column. Tuple structs, enums, unions and generic types are
/// rejected.
///
/// ```
/// use vgi_rpc::ArrowRecord;
///
/// #[derive(Debug, PartialEq, vgi_rpc::ArrowRecord)]
/// struct Point {
///     x: f64,
///     #[vgi(rename = "Y")]
///     y: Option<f64>,
/// }
///
/// let batch = Point::to_batch(vec![Point { x: 1.0, y: None }])?;
/// assert_eq!(batch.schema().field(1).name(), "Y");
/// assert_eq!(Point::from_batch(&batch, 0)?, Point { x: 1.0, y: None });
/// # Ok::<(), vgi_rpc::Error>(())
/// ```
#[proc_macro_derive(ArrowRecord, attributes(vgi))]
pub fn derive_record(item: TokenStream) -> TokenStream {
    derive::expand_record(item.into()).into()
}

/// Derives `vgi_rpc::ArrowEnum` and `vgi_rpc::ArrowValue` for a fieldless enum.
///
/// Values travel as `dictionary<int16, utf8>` holding the member name; `#[vgi(rename =
/// "NAME")]` renames a variant. The enum must also be `Clone + Copy`. Variants with
/// fields, empty enums and generic enums are rejected.
///
/// ```
/// use vgi_rpc::ArrowEnum;
///
/// #[derive(Clone, Copy, Debug, PartialEq, vgi_rpc::ArrowEnum)]
/// enum Status {
///     #[vgi(rename = "ACTIVE")]
///     Active,
///     #[vgi(rename = "INACTIVE")]
///     Inactive,
/// }
///
/// assert_eq!(Status::NAMES, ["ACTIVE", "INACTIVE"]);
/// assert_eq!(Status::from_name("INACTIVE"), Some(Status::Inactive));
/// ```
#[proc_macro_derive(ArrowEnum, attributes(vgi))]
pub fn derive_enum(item: TokenStream) -> TokenStream {
    derive::expand_enum(item.into()).into()
}
