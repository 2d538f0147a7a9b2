//! Parses and validates the input of `#[derive(ArrowRecord)]` / `#[derive(ArrowEnum)]`
//! into [`RecordDef`] / [`EnumDef`].

use std::collections::HashSet;

use proc_macro2::Span;
use syn::ext::IdentExt as _;
use syn::{Data, DeriveInput, Fields, Ident, Type};

use crate::attrs::VgiOptions;
use crate::diag::Errors;

/// A struct deriving `ArrowRecord`.
pub(crate) struct RecordDef {
    pub(crate) ident: Ident,
    /// Fields in declaration order.
    pub(crate) fields: Vec<FieldDef>,
}

/// One record field.
pub(crate) struct FieldDef {
    /// The Rust field name.
    pub(crate) ident: Ident,
    /// The Arrow field name (`#[vgi(rename = ..)]`, or the Rust name without `r#`).
    pub(crate) wire_name: String,
    pub(crate) ty: Type,
}

/// A fieldless enum deriving `ArrowEnum`.
pub(crate) struct EnumDef {
    pub(crate) ident: Ident,
    /// Variants in declaration order.
    pub(crate) variants: Vec<VariantDef>,
}

/// One enum member.
pub(crate) struct VariantDef {
    pub(crate) ident: Ident,
    /// The member name on the wire (`#[vgi(rename = ..)]`, or the variant name).
    pub(crate) wire_name: String,
}

const RENAME: &[&str] = &["rename"];

/// Parses a record.
///
/// # Errors
/// Every problem found, each at its span.
pub(crate) fn record(mut input: DeriveInput) -> syn::Result<RecordDef> {
    let mut errors = Errors::new();
    common(&mut input, "ArrowRecord", &mut errors);
    let fields = match &mut input.data {
        Data::Struct(data) => match &mut data.fields {
            Fields::Named(named) => named.named.iter_mut().collect(),
            Fields::Unit => Vec::new(),
            Fields::Unnamed(unnamed) => {
                errors.spanned(
                    &*unnamed,
                    "`ArrowRecord` needs named fields: each field name is a column name",
                );
                Vec::new()
            }
        },
        Data::Enum(data) => {
            errors.spanned(
                data.enum_token,
                "`ArrowRecord` can only be derived for structs; use `ArrowEnum` for enums",
            );
            Vec::new()
        }
        Data::Union(data) => {
            errors.spanned(
                data.union_token,
                "`ArrowRecord` can only be derived for structs",
            );
            Vec::new()
        }
    };
    let mut names = WireNames::default();
    let mut defs = Vec::new();
    for field in fields {
        let options = VgiOptions::take(&mut field.attrs, RENAME, &mut errors);
        let Some(ident) = field.ident.clone() else {
            continue;
        };
        let (wire_name, span) = match options.name("rename", &mut errors) {
            Some(lit) => (lit.value(), lit.span()),
            None => (ident.unraw().to_string(), ident.span()),
        };
        names.check(&wire_name, span, "field", &mut errors);
        defs.push(FieldDef {
            ident,
            wire_name,
            ty: field.ty.clone(),
        });
    }
    errors.finish()?;
    Ok(RecordDef {
        ident: input.ident,
        fields: defs,
    })
}

/// Parses an enum.
///
/// # Errors
/// Every problem found, each at its span.
pub(crate) fn enumeration(mut input: DeriveInput) -> syn::Result<EnumDef> {
    let mut errors = Errors::new();
    common(&mut input, "ArrowEnum", &mut errors);
    let mut names = WireNames::default();
    let mut variants = Vec::new();
    match &mut input.data {
        Data::Enum(data) => {
            if data.variants.is_empty() {
                errors.spanned(&input.ident, "an `ArrowEnum` needs at least one variant");
            }
            for variant in &mut data.variants {
                let options = VgiOptions::take(&mut variant.attrs, RENAME, &mut errors);
                if !matches!(variant.fields, Fields::Unit) {
                    errors.spanned(
                        &variant.fields,
                        "`ArrowEnum` variants cannot carry data: members travel by name",
                    );
                }
                let (wire_name, span) = match options.name("rename", &mut errors) {
                    Some(lit) => (lit.value(), lit.span()),
                    None => (variant.ident.unraw().to_string(), variant.ident.span()),
                };
                names.check(&wire_name, span, "member", &mut errors);
                variants.push(VariantDef {
                    ident: variant.ident.clone(),
                    wire_name,
                });
            }
        }
        Data::Struct(data) => errors.spanned(
            data.struct_token,
            "`ArrowEnum` can only be derived for enums; use `ArrowRecord` for structs",
        ),
        Data::Union(data) => errors.spanned(
            data.union_token,
            "`ArrowEnum` can only be derived for enums",
        ),
    }
    errors.finish()?;
    Ok(EnumDef {
        ident: input.ident,
        variants,
    })
}

/// Checks shared by both derives: no container options, no generics.
fn common(input: &mut DeriveInput, derive: &str, errors: &mut Errors) {
    VgiOptions::take(&mut input.attrs, &[], errors);
    if !input.generics.params.is_empty() {
        errors.spanned(
            &input.generics,
            format!("`{derive}` cannot be derived for generic types; implement it by hand"),
        );
    } else if let Some(clause) = &input.generics.where_clause {
        errors.spanned(
            clause,
            format!("`{derive}` cannot be derived for generic types; implement it by hand"),
        );
    }
}

/// Detects two fields or members with the same wire name.
#[derive(Default)]
struct WireNames(HashSet<String>);

impl WireNames {
    fn check(&mut self, name: &str, span: Span, what: &str, errors: &mut Errors) {
        if !self.0.insert(name.to_owned()) {
            errors.push(syn::Error::new(
                span,
                format!("duplicate {what} name `{name}`"),
            ));
        }
    }
}
