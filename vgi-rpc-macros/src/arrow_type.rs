//! Compile-time check of Arrow type override tokens (`#[vgi(arrow = "int32")]`).
//!
//! The grammar is the subset of the protocol-hash type tokens that a scalar parameter can
//! be overridden to. Whitespace is ignored and the token is returned in canonical spelling
//! (`decimal128(20, 4)` becomes `decimal128(20,4)`), which is what the runtime parses.

/// The accepted forms, for error messages.
const EXPECTED: &str = "int8..int64, uint8..uint64, float32, float64, bool, utf8, large_utf8, \
     binary, large_binary, fixed_size_binary(N), decimal128(P,S), date32, date64, time32(ms), \
     time64(us), timestamp(us), timestamp(us,tz=UTC), duration(us) or \
     dictionary<index:int16,value:utf8>";

const INTEGERS: &[&str] = &[
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
];

const PLAIN: &[&str] = &[
    "float32",
    "float64",
    "bool",
    "utf8",
    "large_utf8",
    "binary",
    "large_binary",
    "date32",
    "date64",
];

const TIME_UNITS: &[&str] = &["s", "ms", "us", "ns"];

/// Checks `token` against the grammar.
///
/// # Errors
/// A message saying what is wrong, for a diagnostic on the literal.
pub(crate) fn canonical(token: &str) -> Result<String, String> {
    let compact: String = token.chars().filter(|c| !c.is_whitespace()).collect();
    check(&compact)?;
    Ok(compact)
}

fn check(token: &str) -> Result<(), String> {
    if INTEGERS.contains(&token) || PLAIN.contains(&token) {
        return Ok(());
    }
    if let Some(args) = call(token, "fixed_size_binary") {
        return match args.parse::<i32>() {
            Ok(n) if n >= 0 => Ok(()),
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
            "s" | "ms" => Ok(()),
            _ => Err(format!("`time32` takes the unit `s` or `ms`, got `{args}`")),
        };
    }
    if let Some(args) = call(token, "time64") {
        return match args {
            "us" | "ns" => Ok(()),
            _ => Err(format!(
                "`time64` takes the unit `us` or `ns`, got `{args}`"
            )),
        };
    }
    if let Some(args) = call(token, "duration") {
        return unit(args).map(|_| ());
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

/// The argument text of `name(args)`.
fn call<'a>(token: &'a str, name: &str) -> Option<&'a str> {
    token
        .strip_prefix(name)?
        .strip_prefix('(')?
        .strip_suffix(')')
}

fn decimal(args: &str) -> Result<(), String> {
    let bad = || format!("`decimal128(P,S)` needs 1 <= P <= 38 and S <= P, got `({args})`");
    let (precision, scale) = args.split_once(',').ok_or_else(bad)?;
    let precision: u8 = precision.parse().map_err(|_| bad())?;
    let scale: i8 = scale.parse().map_err(|_| bad())?;
    if (1..=38).contains(&precision) && i16::from(scale) <= i16::from(precision) {
        Ok(())
    } else {
        Err(bad())
    }
}

fn unit(args: &str) -> Result<&str, String> {
    if TIME_UNITS.contains(&args) {
        Ok(args)
    } else {
        Err(format!(
            "time unit must be one of `s`, `ms`, `us`, `ns`, got `{args}`"
        ))
    }
}

fn timestamp(args: &str) -> Result<(), String> {
    let Some((u, tz)) = args.split_once(',') else {
        return unit(args).map(|_| ());
    };
    unit(u)?;
    let zone = tz
        .strip_prefix("tz=")
        .ok_or_else(|| format!("expected `tz=ZONE` after the unit, got `{tz}`"))?;
    let valid = !zone.is_empty()
        && zone
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_/+-:".contains(c));
    if valid {
        Ok(())
    } else {
        Err(format!("invalid time zone `{zone}`"))
    }
}

fn dictionary(args: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "expected `dictionary<index:INT,value:utf8>` (or `value:large_utf8`), \
             got `dictionary<{args}>`"
        )
    };
    let (index, value) = args.split_once(',').ok_or_else(bad)?;
    let index = index.strip_prefix("index:").ok_or_else(bad)?;
    let value = value.strip_prefix("value:").ok_or_else(bad)?;
    if INTEGERS.contains(&index) && matches!(value, "utf8" | "large_utf8") {
        Ok(())
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::canonical;

    #[test]
    fn accepts_the_grammar() {
        for token in [
            "int8",
            "int32",
            "uint64",
            "float32",
            "float64",
            "bool",
            "utf8",
            "large_utf8",
            "binary",
            "large_binary",
            "fixed_size_binary(8)",
            "decimal128(20,4)",
            "date32",
            "date64",
            "time32(ms)",
            "time64(us)",
            "timestamp(us)",
            "timestamp(us,tz=UTC)",
            "timestamp(ns,tz=America/New_York)",
            "duration(us)",
            "dictionary<index:int16,value:utf8>",
        ] {
            assert_eq!(canonical(token).as_deref(), Ok(token), "{token}");
        }
        assert_eq!(
            canonical(" decimal128( 20, 4 ) ").as_deref(),
            Ok("decimal128(20,4)")
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
            assert!(canonical(token).is_err(), "{token}");
        }
    }
}
