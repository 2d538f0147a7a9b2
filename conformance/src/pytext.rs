//! Python's text forms of floats and strings, for the few messages whose exact text the
//! reference fixes: `inspect_point` and `exchange_with_header` print floats with Python's
//! `repr` (`2.0`, not Rust's `2`), and `conformance.Secondary.v1.fail` quotes a bad code
//! with `repr(str)`.

use std::fmt::Write as _;

/// Formats `x` exactly as Python's `repr(float)` / `str(float)` does.
///
/// Python prints the shortest digit string that round-trips (as Rust does), but in
/// positional notation only while the decimal exponent is in `-4 ..= 15`, always with a
/// fractional part (`2.0`), and otherwise in scientific notation with a signed, at least
/// two-digit exponent (`1e-05`, `1.5e+16`). Non-finite values are `inf`, `-inf` and `nan`.
pub fn python_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    let sci = shortest_scientific(x);
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    // Position of the decimal point relative to the digit string, as in Python's
    // `format_float_short`: value = 0.d1d2... * 10^decpt.
    let decpt = exponent + 1;
    let mut out = String::from(sign);
    if -4 < decpt && decpt <= 16 {
        let n = i32::try_from(digits.len()).unwrap_or(i32::MAX);
        if decpt <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', decpt.unsigned_abs() as usize));
            out.push_str(&digits);
        } else if decpt >= n {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', (decpt - n) as usize));
            out.push_str(".0");
        } else {
            let (int_part, frac_part) = digits.split_at(decpt as usize);
            out.push_str(int_part);
            out.push('.');
            out.push_str(frac_part);
        }
    } else {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        let _ = write!(out, "e{exp_sign}{:02}", exponent.unsigned_abs());
    }
    out
}

/// The shortest round-tripping digits of finite `x` in Rust's scientific form
/// (`-1.2345e-7`, `0e0`, `5e-324`), with Python's tie rule.
///
/// Rust's `{:e}` finds the shortest digit count, but when the exact value lies halfway
/// between two shortest candidates it may pick the upper one, while Python picks the
/// correctly rounded (half-even) one. Exact formatting at that digit count gives Python's
/// choice; it is used whenever it round-trips.
fn shortest_scientific(x: f64) -> String {
    let shortest = format!("{x:e}");
    let digits = shortest
        .split('e')
        .next()
        .map_or(1, |m| m.chars().filter(char::is_ascii_digit).count());
    let exact = format!("{x:.*e}", digits.saturating_sub(1));
    if exact
        .parse::<f64>()
        .is_ok_and(|y| y.to_bits() == x.to_bits())
    {
        exact
    } else {
        shortest
    }
}

/// Formats `s` as Python's `repr(str)` does: single quotes unless the text contains a
/// single quote and no double quote, backslash escapes for the quote, `\\`, `\t`, `\n`,
/// `\r`, and `\xNN` / `\uNNNN` / `\UNNNNNNNN` for characters Python does not consider
/// printable.
///
/// Printability is approximated by Rust's control-character class plus the Unicode
/// separators and common format characters; exotic unassigned code points may differ.
pub fn python_str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if is_python_printable(c) => out.push(c),
            c => {
                let code = u32::from(c);
                let _ = if code <= 0xff {
                    write!(out, "\\x{code:02x}")
                } else if code <= 0xffff {
                    write!(out, "\\u{code:04x}")
                } else {
                    write!(out, "\\U{code:08x}")
                };
            }
        }
    }
    out.push(quote);
    out
}

fn is_python_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(
        u32::from(c),
        0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x180e | 0x200b..=0x200f
            | 0x202a..=0x202e | 0x2060..=0x2064 | 0x2066..=0x206f | 0xd800..=0xdfff
            | 0xe000..=0xf8ff | 0xfeff | 0xfff9..=0xfffb | 0xf0000..
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_python() {
        let cases: &[(f64, &str)] = &[
            (2.0, "2.0"),
            (1.5, "1.5"),
            (-2.5, "-2.5"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (0.1, "0.1"),
            (1.0 / 3.0, "0.3333333333333333"),
            (100.0, "100.0"),
            (123.456, "123.456"),
            (0.0001, "0.0001"),
            (0.00012, "0.00012"),
            (1e-5, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e15, "1000000000000000.0"),
            (1234567890123456.0, "1234567890123456.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1e100, "1e+100"),
            (5e-324, "5e-324"),
            // Exactly -1981134131452066.25 and 79899752190432.125: halfway between two
            // shortest candidates, where Python rounds half to even.
            (f64::from_bits(0xc31c_2752_f0a1_6289), "-1981134131452066.2"),
            (f64::from_bits(0x42d2_2ac7_1634_7808), "79899752190432.12"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
        ];
        for (x, want) in cases {
            assert_eq!(python_float_repr(*x), *want, "repr({x:?})");
        }
    }

    #[test]
    fn strings_quote_like_python() {
        let cases: &[(&str, &str)] = &[
            ("NOPE", "'NOPE'"),
            ("", "''"),
            ("it's", "\"it's\""),
            ("both ' and \"", "'both \\' and \"'"),
            ("a\\b", "'a\\\\b'"),
            ("tab\there\n", "'tab\\there\\n'"),
            ("nul\0", "'nul\\x00'"),
            ("del\u{7f}", "'del\\x7f'"),
            ("nbsp\u{a0}", "'nbsp\\xa0'"),
            ("zwsp\u{200b}", "'zwsp\\u200b'"),
            ("ünïcode-λ 😀", "'ünïcode-λ 😀'"),
        ];
        for (s, want) in cases {
            assert_eq!(python_str_repr(s), *want, "repr({s:?})");
        }
    }
}
