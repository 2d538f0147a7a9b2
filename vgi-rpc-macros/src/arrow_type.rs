//! Arrow type override tokens (`#[vgi(arrow = "int32")]`): the one grammar for them.
//!
//! A token is parsed once, at compile time, into an [`ArrowType`], and the generated code
//! builds the `DataType` directly from it ([`ArrowType::data_type`]), so the runtime never
//! parses a token and every accepted token maps to exactly one Arrow type. The grammar is
//! the subset of the protocol-hash type tokens (the spelling `vgi_rpc::schema::type_token`
//! prints) that a scalar parameter can be overridden to. Whitespace is ignored
//! (`decimal128(20, 4)` is `decimal128(20,4)`).

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// The accepted forms, for error messages.
const EXPECTED: &str = "int8..int64, uint8..uint64, float32, float64, bool, utf8, large_utf8, \
     binary, large_binary, fixed_size_binary(N), decimal128(P,S), date32, date64, time32(ms), \
     time64(us), timestamp(us), timestamp(us,tz=UTC), duration(us) or \
     dictionary<index:int16,value:utf8>";

/// Integer tokens (also the dictionary index types) and their `DataType` variants.
const INTEGERS: &[(&str, &str)] = &[
    ("int8", "Int8"),
    ("int16", "Int16"),
    ("int32", "Int32"),
    ("int64", "Int64"),
    ("uint8", "UInt8"),
    ("uint16", "UInt16"),
    ("uint32", "UInt32"),
    ("uint64", "UInt64"),
];

/// The other argument-free tokens and their `DataType` variants.
const PLAIN: &[(&str, &str)] = &[
    ("float32", "Float32"),
    ("float64", "Float64"),
    ("bool", "Boolean"),
    ("utf8", "Utf8"),
    ("large_utf8", "LargeUtf8"),
    ("binary", "Binary"),
    ("large_binary", "LargeBinary"),
    ("date32", "Date32"),
    ("date64", "Date64"),
];

/// Dictionary value tokens and their `DataType` variants.
const DICTIONARY_VALUES: &[(&str, &str)] = &[("utf8", "Utf8"), ("large_utf8", "LargeUtf8")];

/// Time unit tokens and their `TimeUnit` variants.
const TIME_UNITS: &[(&str, &str)] = &[
    ("s", "Second"),
    ("ms", "Millisecond"),
    ("us", "Microsecond"),
    ("ns", "Nanosecond"),
];

/// A parsed override: every variant is one `DataType` constructor. Variant and unit names
/// are the `arrow_schema` identifiers (`"Int32"`, `"Microsecond"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ArrowType {
    /// A `DataType` variant without arguments.
    Plain(&'static str),
    FixedSizeBinary(i32),
    Decimal128(u8, i8),
    Time32(&'static str),
    Time64(&'static str),
    Duration(&'static str),
    Timestamp(&'static str, Option<String>),
    Dictionary {
        index: &'static str,
        value: &'static str,
    },
}

impl ArrowType {
    /// Parses `token` against the grammar.
    ///
    /// # Errors
    /// A message saying what is wrong, for a diagnostic on the literal.
    pub(crate) fn parse(token: &str) -> Result<Self, String> {
        let token: String = token.chars().filter(|c| !c.is_whitespace()).collect();
        let token = token.as_str();
        if let Some(variant) = lookup(INTEGERS, token).or_else(|| lookup(PLAIN, token)) {
            return Ok(ArrowType::Plain(variant));
        }
        if let Some(args) = call(token, "fixed_size_binary") {
            return match args.parse::<i32>() {
                Ok(n) if n >= 0 => Ok(ArrowType::FixedSizeBinary(n)),
                _ => Err(format!(
                    "`fixed_size_binary(N)` needs a byte width N >= 0, got `{args}`"
                )),
            };
        }
        if let Some(args) = call(token, "decimal128") {
            return decimal(args);
        }
        if let Some(args) = call(token, "time32") {
            return match args {
                "s" | "ms" => unit(args).map(ArrowType::Time32),
                _ => Err(format!("`time32` takes the unit `s` or `ms`, got `{args}`")),
            };
        }
        if let Some(args) = call(token, "time64") {
            return match args {
                "us" | "ns" => unit(args).map(ArrowType::Time64),
                _ => Err(format!(
                    "`time64` takes the unit `us` or `ns`, got `{args}`"
                )),
            };
        }
        if let Some(args) = call(token, "duration") {
            return unit(args).map(ArrowType::Duration);
        }
        if let Some(args) = call(token, "timestamp") {
            return timestamp(args);
        }
        if let Some(args) = token
            .strip_prefix("dictionary<")
            .and_then(|rest| rest.strip_suffix('>'))
        {
            return dictionary(args);
        }
        Err(format!(
            "unknown Arrow type `{token}`; expected one of {EXPECTED}"
        ))
    }

    /// The `DataType` constructor expression, with absolute paths only.
    pub(crate) fn data_type(&self) -> TokenStream {
        let path = quote!(::vgi_rpc::private::arrow_schema);
        let plain = |variant: &str| {
            let variant = format_ident!("{}", variant);
            quote!(#path::DataType::#variant)
        };
        let unit = |unit: &str| {
            let unit = format_ident!("{}", unit);
            quote!(#path::TimeUnit::#unit)
        };
        match self {
            ArrowType::Plain(variant) => plain(variant),
            ArrowType::FixedSizeBinary(n) => quote!(#path::DataType::FixedSizeBinary(#n)),
            ArrowType::Decimal128(p, s) => quote!(#path::DataType::Decimal128(#p, #s)),
            ArrowType::Time32(u) => {
                let u = unit(u);
                quote!(#path::DataType::Time32(#u))
            }
            ArrowType::Time64(u) => {
                let u = unit(u);
                quote!(#path::DataType::Time64(#u))
            }
            ArrowType::Duration(u) => {
                let u = unit(u);
                quote!(#path::DataType::Duration(#u))
            }
            ArrowType::Timestamp(u, tz) => {
                let u = unit(u);
                let tz = match tz {
                    Some(tz) => quote!(::core::option::Option::Some(
                        <::std::sync::Arc<str> as ::core::convert::From<&str>>::from(#tz)
                    )),
                    None => quote!(::core::option::Option::None),
                };
                quote!(#path::DataType::Timestamp(#u, #tz))
            }
            ArrowType::Dictionary { index, value } => {
                let (index, value) = (plain(index), plain(value));
                quote!(#path::DataType::Dictionary(
                    ::std::boxed::Box::new(#index),
                    ::std::boxed::Box::new(#value),
                ))
            }
        }
    }
}

/// The identifier `token` maps to in `table`.
fn lookup(table: &[(&str, &'static str)], token: &str) -> Option<&'static str> {
    table
        .iter()
        .find(|(spelling, _)| *spelling == token)
        .map(|(_, variant)| *variant)
}

/// The argument text of `name(args)`.
fn call<'a>(token: &'a str, name: &str) -> Option<&'a str> {
    token
        .strip_prefix(name)?
        .strip_prefix('(')?
        .strip_suffix(')')
}

fn decimal(args: &str) -> Result<ArrowType, String> {
    let bad = || format!("`decimal128(P,S)` needs 1 <= P <= 38 and S <= P, got `({args})`");
    let (precision, scale) = args.split_once(',').ok_or_else(bad)?;
    let precision: u8 = precision.parse().map_err(|_| bad())?;
    let scale: i8 = scale.parse().map_err(|_| bad())?;
    if (1..=38).contains(&precision) && i16::from(scale) <= i16::from(precision) {
        Ok(ArrowType::Decimal128(precision, scale))
    } else {
        Err(bad())
    }
}

fn unit(args: &str) -> Result<&'static str, String> {
    lookup(TIME_UNITS, args)
        .ok_or_else(|| format!("time unit must be one of `s`, `ms`, `us`, `ns`, got `{args}`"))
}

fn timestamp(args: &str) -> Result<ArrowType, String> {
    let Some((u, tz)) = args.split_once(',') else {
        return unit(args).map(|u| ArrowType::Timestamp(u, None));
    };
    let u = unit(u)?;
    let zone = tz
        .strip_prefix("tz=")
        .ok_or_else(|| format!("expected `tz=ZONE` after the unit, got `{tz}`"))?;
    let valid = !zone.is_empty()
        && zone
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_/+-:".contains(c));
    if valid {
        Ok(ArrowType::Timestamp(u, Some(zone.to_owned())))
    } else {
        Err(format!("invalid time zone `{zone}`"))
    }
}

fn dictionary(args: &str) -> Result<ArrowType, String> {
    let bad = || {
        format!(
            "expected `dictionary<index:INT,value:utf8>` (or `value:large_utf8`), \
             got `dictionary<{args}>`"
        )
    };
    let (index, value) = args.split_once(',').ok_or_else(bad)?;
    let index = index.strip_prefix("index:").ok_or_else(bad)?;
    let value = value.strip_prefix("value:").ok_or_else(bad)?;
    match (lookup(INTEGERS, index), lookup(DICTIONARY_VALUES, value)) {
        (Some(index), Some(value)) => Ok(ArrowType::Dictionary { index, value }),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::ArrowType;

    #[test]
    fn accepts_the_grammar() {
        // tests/arrow_override.rs takes the common tokens through a whole expansion; these
        // are the rarer spellings.
        for token in [
            "uint8",
            "bool",
            "utf8",
            "binary",
            "time32(s)",
            "time64(ns)",
            "timestamp(s,tz=+05:30)",
            "duration(ns)",
            "decimal128(38,-2)",
            "fixed_size_binary(0)",
        ] {
            assert!(ArrowType::parse(token).is_ok(), "{token}");
        }
        assert_eq!(
            ArrowType::parse(" decimal128( 20, 4 ) "),
            Ok(ArrowType::Decimal128(20, 4))
        );
        assert_eq!(
            ArrowType::parse("timestamp(us,tz=UTC)"),
            Ok(ArrowType::Timestamp("Microsecond", Some("UTC".to_owned())))
        );
        assert_eq!(
            ArrowType::parse("dictionary<index:uint8,value:large_utf8>"),
            Ok(ArrowType::Dictionary {
                index: "UInt8",
                value: "LargeUtf8"
            })
        );
    }

    #[test]
    fn rejects_everything_else() {
        for token in [
            "",
            "int",
            "string",
            "Int32",
            "fixed_size_binary(-1)",
            "fixed_size_binary(x)",
            "decimal128(39,2)",
            "decimal128(5,6)",
            "decimal128(5)",
            "time64(ms)",
            "time32(us)",
            "timestamp(xs)",
            "timestamp(us,UTC)",
            "timestamp(us,tz=)",
            "duration()",
            "dictionary<index:float32,value:utf8>",
            "dictionary<int16,utf8>",
            "list<item?:int64>",
            "int32)",
        ] {
            assert!(ArrowType::parse(token).is_err(), "{token}");
        }
    }

    #[test]
    fn generates_one_constructor() {
        let expr = |token| ArrowType::parse(token).map(|t| t.data_type().to_string());
        assert_eq!(
            expr("int32").unwrap().replace(' ', ""),
            "::vgi_rpc::private::arrow_schema::DataType::Int32"
        );
        assert_eq!(
            expr("time64(ns)").unwrap().replace(' ', ""),
            "::vgi_rpc::private::arrow_schema::DataType::Time64(\
             ::vgi_rpc::private::arrow_schema::TimeUnit::Nanosecond)"
        );
    }
}
