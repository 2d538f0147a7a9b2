//! `#[service]`: parse the trait into a [`model::ServiceDef`], validate it, generate the
//! server. On any error the trait is still emitted (minus its helper attributes).

mod codegen;
mod defaults;
mod model;
mod parse;
mod validate;

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::ItemTrait;

use crate::diag::{self, Errors};

/// Expands `#[service(attr)] item`.
pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut item: ItemTrait = match syn::parse2(item.clone()) {
        Ok(item) => item,
        Err(_) => {
            let error = syn::Error::new(
                Span::call_site(),
                "`#[vgi_rpc::service]` can only be applied to a trait",
            );
            return diag::with_item(item, &error);
        }
    };
    let mut errors = Errors::new();
    let args = errors.ok(parse::args(attr)).unwrap_or_default();
    let def = parse::service(&mut item, args, &mut errors);
    validate::service(&def, &mut errors);
    match errors.finish() {
        Ok(()) => {
            let generated = codegen::generate(&def);
            quote! {
                #item
                #generated
            }
        }
        Err(error) => diag::with_item(&item, &error),
    }
}
