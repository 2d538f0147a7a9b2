//! `ArrowRecord` + `ArrowValue` for a struct with named fields.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::parse::RecordDef;

/// The impls for `def`.
pub(super) fn generate(def: &RecordDef) -> TokenStream {
    let ident = &def.ident;
    let schema = schema(def);
    let to_batch = to_batch(def);
    let from_batch = from_batch(def);
    quote! {
        #[automatically_derived]
        impl ::vgi_rpc::ArrowRecord for #ident {
            fn schema() -> ::vgi_rpc::private::arrow_schema::SchemaRef {
                #schema
            }

            #to_batch

            #from_batch
        }

        ::vgi_rpc::__impl_record_value!(#ident);
    }
}

/// The body of `schema()`: built once, then shared.
fn schema(def: &RecordDef) -> TokenStream {
    let fields = def.fields.iter().map(|field| {
        let name = &field.wire_name;
        let ty = &field.ty;
        quote! {
            ::vgi_rpc::private::arrow_schema::Field::new(
                #name,
                <#ty as ::vgi_rpc::ArrowValue>::data_type(),
                <#ty as ::vgi_rpc::ArrowValue>::NULLABLE,
            )
        }
    });
    quote! {
        static SCHEMA: ::std::sync::OnceLock<::vgi_rpc::private::arrow_schema::SchemaRef> =
            ::std::sync::OnceLock::new();
        ::core::clone::Clone::clone(SCHEMA.get_or_init(|| {
            let fields: ::std::vec::Vec<::vgi_rpc::private::arrow_schema::Field> =
                ::std::vec![#(#fields),*];
            ::std::sync::Arc::new(::vgi_rpc::private::arrow_schema::Schema::new(fields))
        }))
    }
}

/// `to_batch`: moves each field into its own column, then builds one array per column.
fn to_batch(def: &RecordDef) -> TokenStream {
    if def.fields.is_empty() {
        return quote! {
            fn to_batch(
                rows: ::std::vec::Vec<Self>,
            ) -> ::vgi_rpc::Result<::vgi_rpc::private::arrow_array::RecordBatch> {
                ::vgi_rpc::private::empty_batch(
                    <Self as ::vgi_rpc::ArrowRecord>::schema(),
                    rows.len(),
                )
            }
        };
    }
    let members: Vec<&syn::Ident> = def.fields.iter().map(|f| &f.ident).collect();
    let values: Vec<syn::Ident> = (0..def.fields.len())
        .map(|i| format_ident!("__vgi_value{}", i))
        .collect();
    let columns: Vec<syn::Ident> = (0..def.fields.len())
        .map(|i| format_ident!("__vgi_column{}", i))
        .collect();
    let types: Vec<&syn::Type> = def.fields.iter().map(|f| &f.ty).collect();
    quote! {
        fn to_batch(
            rows: ::std::vec::Vec<Self>,
        ) -> ::vgi_rpc::Result<::vgi_rpc::private::arrow_array::RecordBatch> {
            #(
                let mut #columns: ::std::vec::Vec<::core::option::Option<#types>> =
                    ::std::vec::Vec::with_capacity(rows.len());
            )*
            for __vgi_row in rows {
                let Self { #(#members: #values),* } = __vgi_row;
                #( #columns.push(::core::option::Option::Some(#values)); )*
            }
            let __vgi_columns: ::std::vec::Vec<::vgi_rpc::private::arrow_array::ArrayRef> =
                ::std::vec![#( <#types as ::vgi_rpc::ArrowValue>::to_array(#columns)? ),*];
            ::core::result::Result::Ok(::vgi_rpc::private::arrow_array::RecordBatch::try_new(
                <Self as ::vgi_rpc::ArrowRecord>::schema(),
                __vgi_columns,
            )?)
        }
    }
}

/// `from_batch`: reads each field by name.
fn from_batch(def: &RecordDef) -> TokenStream {
    let (batch, index) = if def.fields.is_empty() {
        (quote!(_), quote!(_))
    } else {
        (quote!(batch), quote!(index))
    };
    let fields = def.fields.iter().map(|field| {
        let member = &field.ident;
        let name = &field.wire_name;
        let ty = &field.ty;
        quote! {
            #member: ::vgi_rpc::private::record_field::<#ty>(batch, #name, index)?
        }
    });
    quote! {
        fn from_batch(
            #batch: &::vgi_rpc::private::arrow_array::RecordBatch,
            #index: usize,
        ) -> ::vgi_rpc::Result<Self> {
            ::core::result::Result::Ok(Self { #(#fields),* })
        }
    }
}
