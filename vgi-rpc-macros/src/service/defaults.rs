//! Client-side parameter defaults (`#[vgi(default = ...)]`), rendered as JSON text for
//! `MethodSpec::defaults`: strings become JSON strings, numbers and bools keep their
//! spelling (without a type suffix), `None` becomes `null`.

use std::fmt::Write as _;

use syn::{Expr, ExprLit, ExprUnary, Lit, UnOp};

const EXPECTED: &str = "`default` expects a literal: a string, a number, `true`/`false` or `None`";

/// The JSON text of a default expression.
///
/// # Errors
/// When `expr` is not one of the supported literals.
pub(crate) fn to_json(expr: &Expr) -> syn::Result<String> {
    match expr {
        Expr::Lit(ExprLit { lit, .. }) => literal(lit, false),
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_),
            expr: inner,
            ..
        }) => match &**inner {
            Expr::Lit(ExprLit {
                lit: lit @ (Lit::Int(_) | Lit::Float(_)),
                ..
            }) => literal(lit, true),
            _ => Err(syn::Error::new_spanned(expr, EXPECTED)),
        },
        Expr::Path(p) if p.qself.is_none() && p.path.is_ident("None") => Ok("null".to_owned()),
        Expr::Group(g) => to_json(&g.expr),
        _ => Err(syn::Error::new_spanned(expr, EXPECTED)),
    }
}

fn literal(lit: &Lit, negative: bool) -> syn::Result<String> {
    let sign = if negative { "-" } else { "" };
    match lit {
        Lit::Str(s) => Ok(json_string(&s.value())),
        Lit::Bool(b) => Ok(b.value.to_string()),
        Lit::Int(i) => Ok(format!("{sign}{}", i.base10_digits())),
        Lit::Float(f) => {
            let digits = f.base10_digits();
            // `1.` and `1.e3` are Rust but not JSON.
            let digits = digits.replace(".e", ".0e").replace(".E", ".0E");
            let digits = if digits.ends_with('.') {
                format!("{digits}0")
            } else {
                digits
            };
            Ok(format!("{sign}{digits}"))
        }
        _ => Err(syn::Error::new_spanned(lit, EXPECTED)),
    }
}

/// `s` as a JSON string literal (the escapes `serde_json` writes).
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use syn::parse_quote;

    use super::*;

    fn json(expr: Expr) -> Option<String> {
        to_json(&expr).ok()
    }

    #[test]
    fn renders_literals_as_json() {
        assert_eq!(json(parse_quote!("-")).as_deref(), Some("\"-\""));
        assert_eq!(
            json(parse_quote!("a\"b\\c\n\u{1}")).as_deref(),
            Some(r#""a\"b\\c\n\u0001""#)
        );
        assert_eq!(json(parse_quote!(42)).as_deref(), Some("42"));
        assert_eq!(json(parse_quote!(42i64)).as_deref(), Some("42"));
        assert_eq!(json(parse_quote!(-7)).as_deref(), Some("-7"));
        assert_eq!(json(parse_quote!(0x10)).as_deref(), Some("16"));
        assert_eq!(json(parse_quote!(1.5f64)).as_deref(), Some("1.5"));
        assert_eq!(json(parse_quote!(-2.5e3)).as_deref(), Some("-2.5e3"));
        assert_eq!(json(parse_quote!(1.)).as_deref(), Some("1.0"));
        assert_eq!(json(parse_quote!(true)).as_deref(), Some("true"));
        assert_eq!(json(parse_quote!(None)).as_deref(), Some("null"));
    }

    #[test]
    fn rejects_expressions() {
        assert_eq!(json(parse_quote!(1 + 2)), None);
        assert_eq!(json(parse_quote!(Some(1))), None);
        assert_eq!(json(parse_quote!(b"x")), None);
        assert_eq!(json(parse_quote!(-true)), None);
        assert_eq!(json(parse_quote!('c')), None);
    }
}
