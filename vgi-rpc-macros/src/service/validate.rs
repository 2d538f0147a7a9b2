//! Checks that need the whole parsed service: unique wire names, valid Arrow overrides.

use std::collections::HashSet;

use super::model::ServiceDef;
use crate::arrow_type;
use crate::diag::Errors;

/// Validates `def`, filling in canonical Arrow override tokens.
pub(crate) fn service(def: &mut ServiceDef, errors: &mut Errors) {
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
    for param in def.methods.iter_mut().flat_map(|m| &mut m.params) {
        if let Some(arrow) = &mut param.arrow {
            match arrow_type::canonical(&arrow.literal.value()) {
                Ok(canonical) => arrow.canonical = canonical,
                Err(message) => errors.spanned(&arrow.literal, message),
            }
        }
    }
}
