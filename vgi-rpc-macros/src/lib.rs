//! Procedural macros for [vgi-rpc](https://docs.rs/vgi-rpc). Use them through the `vgi_rpc`
//! re-exports (`vgi_rpc::service`, `vgi_rpc::ArrowRecord`, `vgi_rpc::ArrowEnum`); the
//! generated code names items of `::vgi_rpc` only.
//!
//! Each macro runs in three steps, each in its own module: *parse* the Rust item into a
//! small model (collecting every problem with its span), *validate* what can only be judged
//! as a whole (duplicate wire names, Arrow type tokens), then *codegen* from the model. When
//! any step fails the user's item is still emitted, next to one `compile_error!` per
//! problem, so a single mistake produces a single message.
//!
//! - [`macro@service`]: a trait becomes a protocol: a `{Trait}Server` dispatcher and a
//!   `ProtocolSpec` describing its methods.
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

/// Turns a trait into a vgi-rpc protocol.
///
/// ```ignore
/// #[vgi_rpc::service(protocol = "Calculator", version = "1.0.0")]
/// pub trait Calculator: Send + Sync + 'static {
///     /// Add two numbers.
///     fn add(&self, a: f64, b: f64) -> vgi_rpc::Result<f64>;
/// }
/// let server = CalculatorServer::new(MyCalculator);
/// ```
///
/// Arguments: `protocol = "Name"` (the wire name; defaults to the trait's name) and
/// `version = "1.0.0"` (optional).
///
/// Every method takes `&self` and returns `Result<T>`, where `T` is any
/// `vgi_rpc::private::MethodOutput`: a value (unary), `()` (void), `Producer<S, H>` or
/// `Exchange<S, H>` (streams). A parameter of reference type (`ctx: &CallContext`) receives
/// the call context; every other parameter is an owned `ArrowValue` and becomes a request
/// field, in declaration order.
///
/// Attributes inside the trait (stripped from the re-emitted trait):
/// - on a method: `#[vgi(name = "wire_name")]` renames it on the wire;
/// - on a parameter: `#[vgi(default = <literal>)]` records a client-side default (a string,
///   number, bool or `None`), and `#[vgi(arrow = "int32")]` overrides its Arrow type.
///
/// Generates `{Trait}Server<T>` (with `new`, `from_arc` and the associated function
/// `{Trait}Server::spec()`) implementing `vgi_rpc::server::Service` for every `T: Trait`.
#[proc_macro_attribute]
pub fn service(attr: TokenStream, item: TokenStream) -> TokenStream {
    service::expand(attr.into(), item.into()).into()
}

/// Derives `vgi_rpc::ArrowRecord` and `vgi_rpc::ArrowValue` for a struct with named fields.
///
/// Fields keep their declaration order; `#[vgi(rename = "wire_name")]` renames a field.
#[proc_macro_derive(ArrowRecord, attributes(vgi))]
pub fn derive_record(item: TokenStream) -> TokenStream {
    derive::expand_record(item.into()).into()
}

/// Derives `vgi_rpc::ArrowEnum` and `vgi_rpc::ArrowValue` for a fieldless enum.
///
/// Members travel by name; `#[vgi(rename = "WIRE_NAME")]` renames a variant. The enum must
/// also be `Clone + Copy`.
#[proc_macro_derive(ArrowEnum, attributes(vgi))]
pub fn derive_enum(item: TokenStream) -> TokenStream {
    derive::expand_enum(item.into()).into()
}
