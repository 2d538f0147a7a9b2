//! `#[derive(ArrowRecord)]` and `#[derive(ArrowEnum)]`: [`parse`] the input, then generate
//! the impls ([`record`], [`enumeration`]). The `ArrowValue` half of each is one call to a
//! hidden `macro_rules!` of the runtime, which owns the value encodings.

mod enumeration;
mod parse;
mod record;

use proc_macro2::TokenStream;
use syn::DeriveInput;

/// Expands `#[derive(ArrowRecord)]`.
pub(crate) fn expand_record(item: TokenStream) -> TokenStream {
    syn::parse2::<DeriveInput>(item)
        .and_then(parse::record)
        .map_or_else(|e| e.to_compile_error(), |def| record::generate(&def))
}

/// Expands `#[derive(ArrowEnum)]`.
pub(crate) fn expand_enum(item: TokenStream) -> TokenStream {
    syn::parse2::<DeriveInput>(item)
        .and_then(parse::enumeration)
        .map_or_else(|e| e.to_compile_error(), |def| enumeration::generate(&def))
}
