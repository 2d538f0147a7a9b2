//! Procedural macros for vgi-rpc (placeholder).
use proc_macro::TokenStream;

/// `#[vgi_rpc::service]` on a trait.
#[proc_macro_attribute]
pub fn service(_attr: TokenStream, item: TokenStream) -> TokenStream {
    item
}

/// `#[derive(ArrowRecord)]`.
#[proc_macro_derive(ArrowRecord, attributes(vgi))]
pub fn derive_record(_item: TokenStream) -> TokenStream {
    TokenStream::new()
}

/// `#[derive(ArrowEnum)]`.
#[proc_macro_derive(ArrowEnum, attributes(vgi))]
pub fn derive_enum(_item: TokenStream) -> TokenStream {
    TokenStream::new()
}
