//! Checks that need the whole parsed service: unique wire method names, and Rust method
//! names that leave room for the typed client's own methods.

use std::collections::HashSet;

use syn::ext::IdentExt as _;

use super::codegen::client::{RESERVED, defaults_ident};
use super::model::ServiceDef;
use crate::diag::Errors;

/// Validates `def`.
pub(crate) fn service(def: &ServiceDef, errors: &mut Errors) {
    let mut seen: HashSet<&str> = HashSet::new();
    for method in &def.methods {
        if !seen.insert(&method.wire_name) {
            errors.push(syn::Error::new(
                method.wire_name_span,
                format!(
                    "duplicate method name `{}`: wire names must be unique",
                    method.wire_name
                ),
            ));
        }
    }
    client_names(def, errors);
}

/// Trait method names must not collide with the generated client's other methods.
fn client_names(def: &ServiceDef, errors: &mut Errors) {
    let generated: Vec<(String, String)> = def
        .methods
        .iter()
        .filter_map(|m| Some((defaults_ident(m)?.to_string(), m.ident.unraw().to_string())))
        .collect();
    for method in &def.methods {
        let name = method.ident.unraw().to_string();
        let clash = if RESERVED.contains(&name.as_str()) {
            Some(format!("`{}Client::{name}`", def.ident))
        } else {
            generated
                .iter()
                .find(|(helper, _)| *helper == name)
                .map(|(helper, of)| format!("`{helper}`, the defaults variant of `{of}`"))
        };
        if let Some(clash) = clash {
            errors.spanned(
                &method.ident,
                format!(
                    "method `{name}` would clash with the generated client's {clash}; \
                     rename the Rust method and keep the wire name with \
                     `#[vgi(name = \"{}\")]`",
                    method.wire_name
                ),
            );
        }
    }
}
