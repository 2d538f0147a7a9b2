//! Checks that need the whole parsed service (today: unique wire method names).

use std::collections::HashSet;

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
}
