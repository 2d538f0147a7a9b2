//! Parses `#[service(...)]` arguments and the trait into a [`ServiceDef`], stripping the
//! `#[vgi(...)]` helper attributes from the trait as it goes (they are not real attributes
//! and would not compile on the re-emitted trait).

use std::collections::HashSet;

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens as _;
use syn::ext::IdentExt as _;
use syn::{
    FnArg, GenericArgument, Ident, ItemTrait, LitStr, Pat, PatType, PathArguments, ReturnType,
    Signature, TraitItem, TraitItemFn, Type,
};

use super::defaults;
use super::model::{CallShape, ContextParam, MethodDef, ParamDef, ServiceDef};
use crate::arrow_type::ArrowType;
use crate::attrs::{self, VgiOptions};
use crate::diag::Errors;

/// `#[service(protocol = "...", version = "...")]`.
#[derive(Default)]
pub(crate) struct ServiceArgs {
    protocol: Option<LitStr>,
    version: Option<LitStr>,
}

const SERVICE_KEYS: &[&str] = &["protocol", "version"];

/// Parses the attribute's arguments.
///
/// # Errors
/// Unknown or repeated keys, non-string values, empty names.
pub(crate) fn args(attr: TokenStream) -> syn::Result<ServiceArgs> {
    let mut args = ServiceArgs::default();
    let parser = syn::meta::parser(|meta| {
        let slot = if meta.path.is_ident("protocol") {
            &mut args.protocol
        } else if meta.path.is_ident("version") {
            &mut args.version
        } else {
            let message = attrs::unknown_key_message("service", &meta.path, SERVICE_KEYS);
            return Err(meta.error(message));
        };
        if slot.is_some() {
            return Err(meta.error("duplicate option"));
        }
        let value: LitStr = meta.value()?.parse()?;
        if value.value().is_empty() {
            return Err(syn::Error::new_spanned(&value, "must not be empty"));
        }
        *slot = Some(value);
        Ok(())
    });
    syn::parse::Parser::parse2(parser, attr)?;
    Ok(args)
}

/// Parses the trait, recording every problem in `errors`.
pub(crate) fn service(item: &mut ItemTrait, args: ServiceArgs, errors: &mut Errors) -> ServiceDef {
    VgiOptions::take(&mut item.attrs, &[], errors);
    if !item.generics.params.is_empty() {
        errors.spanned(&item.generics, "generic service traits are not supported");
    } else if let Some(clause) = &item.generics.where_clause {
        errors.spanned(clause, "generic service traits are not supported");
    }
    let mut methods = Vec::new();
    for trait_item in &mut item.items {
        match trait_item {
            TraitItem::Fn(f) => methods.extend(method(f, errors)),
            other => errors.spanned(
                &*other,
                "a service trait may contain only methods (`fn name(&self, ..) -> Result<T>`)",
            ),
        }
    }
    ServiceDef {
        vis: item.vis.clone(),
        ident: item.ident.clone(),
        protocol: args
            .protocol
            .map_or_else(|| item.ident.unraw().to_string(), |p| p.value()),
        version: args.version.map(|v| v.value()),
        doc: attrs::docs(&item.attrs),
        impl_param: unused_ident(item),
        methods,
    }
}

/// The first of a few readable type parameter names that the trait does not mention.
fn unused_ident(item: &ItemTrait) -> Ident {
    fn collect(tokens: TokenStream, seen: &mut HashSet<String>) {
        for token in tokens {
            match token {
                TokenTree::Ident(ident) => {
                    seen.insert(ident.to_string());
                }
                TokenTree::Group(group) => collect(group.stream(), seen),
                TokenTree::Punct(_) | TokenTree::Literal(_) => {}
            }
        }
    }
    let mut seen = HashSet::new();
    collect(item.to_token_stream(), &mut seen);
    let name = ["T", "S", "Impl", "VgiImpl"]
        .into_iter()
        .find(|name| !seen.contains(*name))
        .map_or_else(|| format!("VgiImpl{}", seen.len()), str::to_owned);
    Ident::new(&name, Span::call_site())
}

fn method(f: &mut TraitItemFn, errors: &mut Errors) -> Option<MethodDef> {
    let options = VgiOptions::take(&mut f.attrs, &["name"], errors);
    let (wire_name, wire_name_span) = match options.name("name", errors) {
        Some(lit) => (lit.value(), lit.span()),
        None => (f.sig.ident.unraw().to_string(), f.sig.ident.span()),
    };
    signature_shape(&f.sig, errors);

    let has_body = f.default.is_some();
    let mut context: Option<ContextParam> = None;
    let mut params = Vec::new();
    let mut inputs = f.sig.inputs.iter_mut();
    receiver(&f.sig.ident, inputs.next(), errors);
    for (position, input) in inputs.enumerate() {
        let FnArg::Typed(arg) = input else {
            continue; // A second receiver is already a syntax error.
        };
        if let Type::Reference(_) = &*arg.ty {
            VgiOptions::take(&mut arg.attrs, &[], errors);
            if context.is_some() {
                errors.spanned(&*arg, "a method takes at most one call context parameter");
            }
            context = Some(ContextParam { position });
            continue;
        }
        params.extend(param(arg, has_body, errors));
    }

    let output = errors.ok(output(&f.sig))?;
    Some(MethodDef {
        ident: f.sig.ident.clone(),
        wire_name,
        wire_name_span,
        doc: attrs::docs(&f.attrs),
        context,
        params,
        shape: shape(&output),
        output,
    })
}

/// One wire parameter.
fn param(arg: &mut PatType, has_body: bool, errors: &mut Errors) -> Option<ParamDef> {
    let options = VgiOptions::take(&mut arg.attrs, &["default", "arrow"], errors);
    if let Type::ImplTrait(_) = &*arg.ty {
        errors.spanned(&arg.ty, "`impl Trait` parameters are not supported");
    }
    let default = options
        .expr("default")
        .and_then(|expr| errors.ok(defaults::to_json(expr)));
    let arrow = options.string("arrow", errors).and_then(|literal| {
        ArrowType::parse(&literal.value())
            .map_err(|message| errors.spanned(&literal, message))
            .ok()
    });
    let ident = match &*arg.pat {
        Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => p.ident.clone(),
        other => {
            errors.spanned(
                other,
                "parameters must be plain identifiers (the name is the request field name)",
            );
            if !has_body {
                // A pattern is an error of its own in a method without a body: keep the
                // re-emitted trait free of it so the mistake is reported once.
                *arg.pat = Pat::Wild(syn::PatWild {
                    attrs: Vec::new(),
                    underscore_token: Default::default(),
                });
            }
            return None;
        }
    };
    Some(ParamDef {
        wire_name: ident.unraw().to_string(),
        ident,
        ty: (*arg.ty).clone(),
        default,
        arrow,
    })
}

/// Rejects signature features a wire method cannot have.
fn signature_shape(sig: &Signature, errors: &mut Errors) {
    if let Some(token) = &sig.asyncness {
        errors.spanned(token, "async methods are not supported yet");
    }
    if let Some(token) = &sig.unsafety {
        errors.spanned(token, "unsafe methods are not supported");
    }
    if let Some(abi) = &sig.abi {
        errors.spanned(abi, "extern methods are not supported");
    }
    if !sig.generics.params.is_empty() {
        errors.spanned(
            &sig.generics,
            "generic methods are not supported: a method's wire schema must be fixed",
        );
    } else if let Some(clause) = &sig.generics.where_clause {
        errors.spanned(
            clause,
            "generic methods are not supported: a method's wire schema must be fixed",
        );
    }
    if let Some(variadic) = &sig.variadic {
        errors.spanned(variadic, "variadic methods are not supported");
    }
}

/// Checks that the first input is `&self`.
fn receiver(name: &syn::Ident, first: Option<&mut FnArg>, errors: &mut Errors) {
    let receiver = match first {
        Some(FnArg::Receiver(receiver)) => receiver,
        Some(FnArg::Typed(arg)) => {
            return errors.spanned(&*arg, "service methods take `&self` first");
        }
        None => return errors.spanned(name, "service methods take `&self`"),
    };
    VgiOptions::take(&mut receiver.attrs, &[], errors);
    let shared_self = match &*receiver.ty {
        Type::Reference(r) => {
            r.mutability.is_none()
                && matches!(&*r.elem, Type::Path(p) if p.qself.is_none() && p.path.is_ident("Self"))
        }
        _ => false,
    };
    if !shared_self {
        let message = if receiver.reference.is_some() {
            "service methods take `&self`, not `&mut self`: calls may run concurrently"
        } else {
            "service methods take `&self`, not `self` by value"
        };
        errors.spanned(&*receiver, message);
    }
}

/// `T` in the declared `-> Result<T>`.
fn output(sig: &Signature) -> syn::Result<Type> {
    const MESSAGE: &str = "service methods must return `vgi_rpc::Result<T>`";
    let ty = match &sig.output {
        ReturnType::Type(_, ty) => ty,
        ReturnType::Default => return Err(syn::Error::new_spanned(sig, MESSAGE)),
    };
    if let Type::Path(path) = &**ty
        && path.qself.is_none()
        && let Some(last) = path.path.segments.last()
        && let PathArguments::AngleBracketed(generic) = &last.arguments
        && generic.args.len() == 1
        && let Some(GenericArgument::Type(output)) = generic.args.first()
    {
        return Ok(output.clone());
    }
    Err(syn::Error::new_spanned(ty, MESSAGE))
}

/// The client-side shape of a declared result type `T` (see [`CallShape`]).
fn shape(output: &Type) -> CallShape {
    let Type::Path(path) = output else {
        return CallShape::Unary;
    };
    let Some(last) = path.path.segments.last() else {
        return CallShape::Unary;
    };
    let PathArguments::AngleBracketed(generic) = &last.arguments else {
        return CallShape::Unary;
    };
    let types: Vec<&Type> = generic
        .args
        .iter()
        .filter_map(|arg| match arg {
            GenericArgument::Type(ty) => Some(ty),
            _ => None,
        })
        .collect();
    if types.len() != generic.args.len() {
        return CallShape::Unary;
    }
    let (state, header) = match types.as_slice() {
        [state] => ((*state).clone(), syn::parse_quote!(())),
        [state, header] => ((*state).clone(), (*header).clone()),
        _ => return CallShape::Unary,
    };
    if last.ident == "Producer" {
        CallShape::Producer { state, header }
    } else if last.ident == "Exchange" {
        CallShape::Exchange { state, header }
    } else {
        CallShape::Unary
    }
}
