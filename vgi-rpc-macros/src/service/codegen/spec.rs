//! The `ProtocolSpec` expression: names, docs, kinds, request/result/header schemas and
//! client-side defaults. Schemas come from the runtime traits, never from type names.

use proc_macro2::TokenStream;
use quote::quote;

use super::{arrow_override, option, string};
use crate::service::model::{MethodDef, ServiceDef};

/// An expression of type `::vgi_rpc::server::ProtocolSpec` describing `def`.
pub(super) fn protocol(def: &ServiceDef) -> TokenStream {
    let name = string(&def.protocol);
    let version = option(def.version.as_deref().map(string));
    let doc = string(&def.doc);
    let methods = def.methods.iter().map(method);
    quote! {
        ::vgi_rpc::server::ProtocolSpec {
            name: #name,
            version: #version,
            doc: #doc,
            methods: ::std::vec![#(#methods),*],
        }
    }
}

fn method(method: &MethodDef) -> TokenStream {
    let name = string(&method.wire_name);
    let doc = string(&method.doc);
    let output = &method.output;
    let fields = method.params.iter().map(|param| {
        let ty = &param.ty;
        let wire_name = &param.wire_name;
        let arrow = arrow_override(param);
        quote!(::vgi_rpc::private::param_field::<#ty>(#wire_name, #arrow))
    });
    let defaults = method
        .params
        .iter()
        .map(|param| option(param.default.as_deref().map(string)));
    quote! {
        ::vgi_rpc::server::MethodSpec {
            name: #name,
            doc: #doc,
            kind: <#output as ::vgi_rpc::private::MethodOutput>::KIND,
            params: {
                let fields: ::std::vec::Vec<::vgi_rpc::private::arrow_schema::Field> =
                    ::std::vec![#(#fields),*];
                ::std::sync::Arc::new(::vgi_rpc::private::arrow_schema::Schema::new(fields))
            },
            defaults: ::std::vec![#(#defaults),*],
            result: <#output as ::vgi_rpc::private::MethodOutput>::result_schema(),
            header: <#output as ::vgi_rpc::private::MethodOutput>::header_schema(),
        }
    }
}
