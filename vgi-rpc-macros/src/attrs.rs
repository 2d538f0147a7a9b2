//! The `#[vgi(key = value, ...)]` helper attribute and doc comments, shared by every macro.

use syn::{Attribute, Expr, ExprLit, Ident, Lit, LitStr};

use crate::diag::Errors;

/// Name of the helper attribute.
const VGI: &str = "vgi";

/// The `key = value` pairs of the `#[vgi(...)]` attributes on one item.
pub(crate) struct VgiOptions {
    entries: Vec<(Ident, Expr)>,
}

impl VgiOptions {
    /// Removes every `#[vgi(...)]` from `attrs` and parses it. Keys outside `allowed`, a
    /// key given twice and malformed syntax are recorded in `errors`.
    pub(crate) fn take(attrs: &mut Vec<Attribute>, allowed: &[&str], errors: &mut Errors) -> Self {
        let mut entries: Vec<(Ident, Expr)> = Vec::new();
        let (vgi, other): (Vec<Attribute>, Vec<Attribute>) =
            attrs.drain(..).partition(|a| a.path().is_ident(VGI));
        *attrs = other;
        for attr in &vgi {
            let parsed = attr.parse_nested_meta(|meta| {
                let key = match meta.path.get_ident() {
                    Some(key) if allowed.contains(&key.to_string().as_str()) => key.clone(),
                    _ => return Err(meta.error(unknown_key_message(VGI, &meta.path, allowed))),
                };
                let value: Expr = meta.value()?.parse()?;
                if entries.iter().any(|(k, _)| *k == key) {
                    return Err(syn::Error::new_spanned(
                        &key,
                        format!("duplicate `{key}` option"),
                    ));
                }
                entries.push((key, value));
                Ok(())
            });
            errors.ok(parsed);
        }
        VgiOptions { entries }
    }

    /// The value of `key` as an expression.
    pub(crate) fn expr(&self, key: &str) -> Option<&Expr> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The value of `key`, which must be a string literal.
    pub(crate) fn string(&self, key: &str, errors: &mut Errors) -> Option<LitStr> {
        match self.expr(key)? {
            Expr::Lit(ExprLit {
                lit: Lit::Str(s), ..
            }) => Some(s.clone()),
            other => {
                errors.spanned(other, format!("`{key}` expects a string literal"));
                None
            }
        }
    }

    /// The value of `key` as a non-empty string literal.
    pub(crate) fn name(&self, key: &str, errors: &mut Errors) -> Option<LitStr> {
        let lit = self.string(key, errors)?;
        if lit.value().is_empty() {
            errors.spanned(&lit, format!("`{key}` must not be empty"));
            return None;
        }
        Some(lit)
    }
}

/// "unknown `{attribute}` option `key`; expected ..." for a key outside `allowed`.
pub(crate) fn unknown_key_message(attribute: &str, path: &syn::Path, allowed: &[&str]) -> String {
    let key = quote::quote!(#path).to_string().replace(' ', "");
    if allowed.is_empty() {
        return format!("`#[vgi({key} = ...)]` is not allowed here");
    }
    let quoted: Vec<String> = allowed.iter().map(|k| format!("`{k}`")).collect();
    let expected = match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    format!("unknown `{attribute}` option `{key}`; expected {expected}")
}

/// The text of an item's `///` doc comments: lines joined with `\n`, each without the one
/// space that follows `///`, surrounding blank lines removed.
pub(crate) fn docs(attrs: &[Attribute]) -> String {
    let mut lines: Vec<String> = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("doc")) {
        if let syn::Meta::NameValue(nv) = &attr.meta
            && let Expr::Lit(ExprLit {
                lit: Lit::Str(s), ..
            }) = &nv.value
        {
            let text = s.value();
            // `split`, not `lines`: an empty `///` is an empty line, not none.
            for line in text.split('\n') {
                lines.push(line.strip_prefix(' ').unwrap_or(line).trim_end().to_owned());
            }
        }
    }
    lines.join("\n").trim_matches('\n').to_owned()
}

#[cfg(test)]
mod tests {
    use syn::parse_quote;

    use super::*;

    #[test]
    fn doc_lines_are_joined() {
        let attrs: Vec<Attribute> = parse_quote! {
            ///
            /// Echo a string.
            ///
            ///   Indented.
            #[inline]
            ///
        };
        assert_eq!(docs(&attrs), "Echo a string.\n\n  Indented.");
    }

    #[test]
    fn options_are_taken_and_checked() {
        let mut attrs: Vec<Attribute> = parse_quote! {
            #[vgi(default = "-", arrow = "int32")]
            #[doc = "kept"]
            #[vgi(nope = 1)]
        };
        let mut errors = Errors::new();
        let opts = VgiOptions::take(&mut attrs, &["default", "arrow"], &mut errors);
        assert_eq!(attrs.len(), 1);
        assert!(opts.expr("default").is_some());
        assert_eq!(
            opts.string("arrow", &mut errors).map(|s| s.value()),
            Some("int32".to_owned())
        );
        let message = errors.finish().err().map(|e| e.to_string());
        assert_eq!(
            message.as_deref(),
            Some("unknown `vgi` option `nope`; expected `default` or `arrow`")
        );
    }
}
