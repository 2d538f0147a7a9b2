//! The parsed form of a `#[service]` trait. It knows nothing about the generated code, so
//! each generator (server, spec, and later a typed client) reads the same model.

use proc_macro2::Span;
use syn::{Ident, Type, Visibility};

use crate::arrow_type::ArrowType;

/// A service trait.
pub(crate) struct ServiceDef {
    /// The trait's visibility, given to every generated item.
    pub(crate) vis: Visibility,
    /// The trait's name.
    pub(crate) ident: Ident,
    /// The protocol's wire name.
    pub(crate) protocol: String,
    /// The protocol version, if declared.
    pub(crate) version: Option<String>,
    /// The trait's doc comment.
    pub(crate) doc: String,
    /// A type parameter name that appears nowhere in the trait, for the generated
    /// `{Trait}Server<T>` (so a user type called `T` is never shadowed).
    pub(crate) impl_param: Ident,
    /// Methods in declaration order (the order defines the method indices).
    pub(crate) methods: Vec<MethodDef>,
}

/// One trait method.
pub(crate) struct MethodDef {
    /// The Rust name.
    pub(crate) ident: Ident,
    /// The wire name (`#[vgi(name = ..)]`, or the Rust name).
    pub(crate) wire_name: String,
    /// Where the wire name was written, for diagnostics.
    pub(crate) wire_name_span: Span,
    /// The method's doc comment.
    pub(crate) doc: String,
    /// The call context parameter, if the method takes one.
    pub(crate) context: Option<ContextParam>,
    /// The wire parameters, in declaration order.
    pub(crate) params: Vec<ParamDef>,
    /// `T` in the declared `Result<T>`.
    pub(crate) output: Type,
    /// How the typed client calls the method, read from how `T` is spelled.
    pub(crate) shape: CallShape,
}

/// The client-side shape of a method. The server learns a method's kind from the
/// runtime's `MethodOutput` trait; the client must also *name* its return type, so the
/// macro reads the spelling: a last path segment `Producer<S>` / `Producer<S, H>` (or
/// `Exchange<..>`) is a stream, anything else unary. A stream hidden behind a type alias is
/// therefore called as unary, which the runtime's `UnaryOutput` bound rejects with a note.
pub(crate) enum CallShape {
    /// A unary call returning `T` (`()` for void).
    Unary,
    /// A producer stream with state `S` and header `H` (`()` when absent).
    Producer { state: Type, header: Type },
    /// An exchange stream with state `S` and header `H` (`()` when absent).
    Exchange { state: Type, header: Type },
}

impl MethodDef {
    /// The method's Rust arguments in declaration order: `None` stands for the call
    /// context, `Some(param)` for a wire parameter.
    pub(crate) fn arguments(&self) -> impl Iterator<Item = Option<&ParamDef>> {
        let total = self.params.len() + usize::from(self.context.is_some());
        let mut params = self.params.iter();
        (0..total).map(move |position| match &self.context {
            Some(ctx) if ctx.position == position => None,
            _ => params.next(),
        })
    }
}

/// The parameter that receives `&CallContext`.
pub(crate) struct ContextParam {
    /// Position among the method's arguments (after `&self`).
    pub(crate) position: usize,
}

/// One wire parameter.
pub(crate) struct ParamDef {
    /// The Rust name (the typed client's argument name).
    pub(crate) ident: Ident,
    /// The request field name (the Rust name without `r#`).
    pub(crate) wire_name: String,
    /// The declared (owned) type.
    pub(crate) ty: Type,
    /// Client-side default as JSON-like source text (`"\"-\""`, `42`, `true`, `null`).
    pub(crate) default: Option<String>,
    /// Arrow type override (`#[vgi(arrow = "...")]`), parsed.
    pub(crate) arrow: Option<ArrowType>,
}
