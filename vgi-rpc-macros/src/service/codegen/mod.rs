//! Code generation for `#[service]`: one file per generated item family, all reading the
//! same [`ServiceDef`].

pub(crate) mod client;
mod server;
mod spec;

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::Ident;

use super::model::{ParamDef, ServiceDef};
use crate::arrow_type::ArrowType;

/// Every item generated for `def` (the trait itself is emitted by the caller).
pub(crate) fn generate(def: &ServiceDef) -> TokenStream {
    let server = server::generate(def);
    let client = client::generate(def);
    quote! {
        #server
        #client
    }
}

/// `{Trait}Server`.
fn server_ident(def: &ServiceDef) -> Ident {
    format_ident!("{}Server", def.ident)
}

/// An owned `String` expression.
fn string(value: &str) -> TokenStream {
    quote!(<str as ::std::borrow::ToOwned>::to_owned(#value))
}

/// An `Option` expression.
fn option(value: Option<TokenStream>) -> TokenStream {
    match value {
        Some(value) => quote!(::core::option::Option::Some(#value)),
        None => quote!(::core::option::Option::None),
    }
}

/// The parameter's Arrow type override as an `Option<DataType>` expression.
fn arrow_override(param: &ParamDef) -> TokenStream {
    option(param.arrow.as_ref().map(ArrowType::data_type))
}
