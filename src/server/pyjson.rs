//! JSON text the way Python's `json.dumps` writes it (ASCII-only, `", "` / `": "`
//! separators, or compact `","` / `":"`), so our metadata values match the reference's.

use serde_json::Value;
use std::fmt::Write as _;

/// Python `json.dumps(value)` (spaced separators) or, when `compact`,
/// `json.dumps(value, separators=(",", ":"))`. Non-ASCII is escaped as `\uXXXX`.
pub(crate) fn dumps(value: &Value, compact: bool) -> String {
    let mut out = String::new();
    write_value(&mut out, value, compact);
    out
}

fn write_value(out: &mut String, value: &Value, compact: bool) {
    let (item_sep, key_sep) = if compact { (",", ":") } else { (", ", ": ") };
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => out.push_str(&python_float_repr(f)),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                write_value(out, item, compact);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                write_string(out, k);
                out.push_str(key_sep);
                write_value(out, v, compact);
            }
            out.push('}');
        }
    }
}

fn write_string(out: &mut String, s: &str) {
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
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python's `repr(float)`: shortest round-trip digits, always with a decimal point or an
/// exponent (`2.0`, `1e-05`, `inf`, `nan`).
pub(crate) fn python_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    let text = format!("{f:?}");
    // Rust's Debug already prints the shortest round-trip form; only the exponent style
    // differs from Python (Rust: 1e-5, Python: 1e-05).
    match text.split_once('e') {
        Some((mantissa, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ("-", d),
                None => ("+", exp),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_python_dumps() {
        let v = serde_json::json!({"a": "x\u{2014}", "b": [1, 1.5, true, null]});
        assert_eq!(
            dumps(&v, false),
            r#"{"a": "x\u2014", "b": [1, 1.5, true, null]}"#
        );
        assert_eq!(dumps(&v, true), r#"{"a":"x\u2014","b":[1,1.5,true,null]}"#);
    }

    #[test]
    fn floats_like_python_json() {
        assert_eq!(python_float_repr(2.0), "2.0");
        assert_eq!(python_float_repr(1e-5), "1e-05");
        assert_eq!(python_float_repr(1.5e300), "1.5e+300");
    }
}
