//! `ArrowEnum` + `ArrowValue` for a fieldless enum.

use proc_macro2::TokenStream;
use quote::quote;

use super::parse::EnumDef;

/// The impls for `def`.
pub(super) fn generate(def: &EnumDef) -> TokenStream {
    let ident = &def.ident;
    let names: Vec<&str> = def.variants.iter().map(|v| v.wire_name.as_str()).collect();
    let variants: Vec<&syn::Ident> = def.variants.iter().map(|v| &v.ident).collect();
    quote! {
        #[automatically_derived]
        impl ::vgi_rpc::ArrowEnum for #ident {
            const NAMES: &'static [&'static str] = &[#(#names),*];

            fn name(&self) -> &'static str {
                match *self {
                    #(Self::#variants => #names,)*
                }
            }

            fn from_name(name: &str) -> ::core::option::Option<Self> {
                match name {
                    #(#names => ::core::option::Option::Some(Self::#variants),)*
                    _ => ::core::option::Option::None,
                }
            }
        }

        ::vgi_rpc::__impl_enum_value!(#ident);
    }
}
