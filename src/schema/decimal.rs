//! [`Decimal`]: a fixed-point number carried as `decimal128(P, S)`.

use std::fmt;
use std::str::FromStr;

use arrow_array::{Array, ArrayRef, Decimal128Array};
use arrow_schema::DataType;

use super::ArrowValue;
use super::util::exact_slot;
use crate::{Error, Result};

/// A `decimal128(P, S)` value: the unscaled integer `self.0` stands for `self.0 * 10^-S`.
///
/// `Decimal::<20, 4>(1_234_567)` is `123.4567`. Displays and parses in plain notation
/// (`"123.4567"`, `"-0.5000"`), always with exactly `S` fractional digits.
///
/// ```
/// use vgi_rpc::schema::Decimal;
/// let d: Decimal<20, 4> = "123.45".parse().unwrap();
/// assert_eq!(d.unscaled(), 1_234_500);
/// assert_eq!(d.to_string(), "123.4500");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Decimal<const P: u8, const S: i8>(pub i128);

impl<const P: u8, const S: i8> Decimal<P, S> {
    /// The precision (total significant digits).
    pub const PRECISION: u8 = P;
    /// The scale (digits after the decimal point).
    pub const SCALE: i8 = S;

    /// A decimal from its unscaled integer value.
    pub const fn new(unscaled: i128) -> Self {
        Decimal(unscaled)
    }

    /// The unscaled integer value.
    pub const fn unscaled(self) -> i128 {
        self.0
    }

    /// Whether the value has at most `P` digits.
    pub fn fits_precision(self) -> bool {
        u32::from(P) >= 39 || self.0.unsigned_abs() < 10u128.pow(u32::from(P))
    }
}

impl<const P: u8, const S: i8> fmt::Display for Decimal<P, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let digits = self.0.unsigned_abs().to_string();
        if S <= 0 {
            let zeros = if self.0 == 0 {
                0
            } else {
                usize::from(S.unsigned_abs())
            };
            return write!(f, "{sign}{digits}{}", "0".repeat(zeros));
        }
        let scale = usize::from(S.unsigned_abs());
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (int, frac) = padded.split_at(padded.len() - scale);
        write!(f, "{sign}{int}.{frac}")
    }
}

impl<const P: u8, const S: i8> FromStr for Decimal<P, S> {
    type Err = Error;

    /// Parses `[-+]digits[.digits][e[-+]digits]`. Digits beyond the scale must be zeros
    /// (no rounding), and the result must fit the precision.
    fn from_str(s: &str) -> Result<Self> {
        let invalid = || {
            Error::type_error(format!(
                "invalid decimal literal '{s}' for decimal128({P},{S})"
            ))
        };
        let (negative, rest) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let (mantissa, exponent) = match rest.find(['e', 'E']) {
            Some(at) => (
                &rest[..at],
                rest[at + 1..].parse::<i32>().map_err(|_| invalid())?,
            ),
            None => (rest, 0),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if int.is_empty() && frac.is_empty()
            || !(int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()))
        {
            return Err(invalid());
        }
        let frac_len = i32::try_from(frac.len()).map_err(|_| invalid())?;
        // digits * 10^(exponent - frac_len) == unscaled * 10^-S
        let shift = exponent
            .checked_sub(frac_len)
            .and_then(|e| e.checked_add(i32::from(S)))
            .ok_or_else(invalid)?;
        let mut digits: String = int.chars().chain(frac.chars()).collect();
        if shift < 0 {
            let drop = usize::try_from(shift.unsigned_abs()).map_err(|_| invalid())?;
            let keep = digits.len().saturating_sub(drop);
            if digits[keep..].bytes().any(|b| b != b'0') {
                return Err(Error::type_error(format!(
                    "'{s}' has more than {S} fractional digits for decimal128({P},{S})"
                )));
            }
            digits.truncate(keep);
        }
        let mut value: i128 = 0;
        for b in digits.bytes() {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(i128::from(b - b'0')))
                .ok_or_else(invalid)?;
        }
        if shift > 0 {
            let factor = 10i128
                .checked_pow(shift.unsigned_abs())
                .ok_or_else(invalid)?;
            value = value.checked_mul(factor).ok_or_else(invalid)?;
        }
        let decimal = Decimal(if negative { -value } else { value });
        if !decimal.fits_precision() {
            return Err(Error::type_error(format!(
                "'{s}' does not fit decimal128({P},{S})"
            )));
        }
        Ok(decimal)
    }
}

impl<const P: u8, const S: i8> ArrowValue for Decimal<P, S> {
    fn data_type() -> DataType {
        DataType::Decimal128(P, S)
    }

    fn to_array(items: Vec<Option<Self>>) -> Result<ArrayRef> {
        if let Some(bad) = items.iter().flatten().find(|d| !d.fits_precision()) {
            return Err(Error::type_error(format!(
                "unscaled value {} does not fit decimal128({P},{S})",
                bad.0
            )));
        }
        let values: Vec<Option<i128>> = items.into_iter().map(|d| d.map(|d| d.0)).collect();
        let array = Decimal128Array::from(values).with_precision_and_scale(P, S)?;
        Ok(std::sync::Arc::new(array))
    }

    fn from_array(array: &dyn Array, index: usize) -> Result<Option<Self>> {
        let slot = exact_slot::<Decimal128Array>(array, index, &Self::data_type())?;
        Ok(slot.map(|a| Decimal(a.value(index))))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    type D = Decimal<20, 4>;

    #[test]
    fn display_matches_python() {
        assert_eq!(D::new(1_234_567).to_string(), "123.4567");
        assert_eq!(D::new(0).to_string(), "0.0000");
        assert_eq!(D::new(-5_000).to_string(), "-0.5000");
        assert_eq!(D::new(1).to_string(), "0.0001");
        assert_eq!(D::new(100_000).to_string(), "10.0000");
        assert_eq!(Decimal::<5, 0>::new(-12).to_string(), "-12");
        assert_eq!(Decimal::<5, -2>::new(3).to_string(), "300");
        assert_eq!(
            Decimal::<38, 2>::new(i128::MIN).to_string(),
            "-1701411834604692317316873037158841057.28"
        );
    }

    #[test]
    fn parse_round_trips() {
        for text in ["123.4567", "0.0000", "-0.5000", "99999999999999.9999"] {
            assert_eq!(text.parse::<D>().unwrap().to_string(), text);
        }
        assert_eq!("1.5".parse::<D>().unwrap(), D::new(15_000));
        assert_eq!("-7".parse::<D>().unwrap(), D::new(-70_000));
        assert_eq!("1.23400".parse::<D>().unwrap(), D::new(12_340));
        assert_eq!("1e2".parse::<D>().unwrap(), D::new(1_000_000));
        assert_eq!("15E-4".parse::<D>().unwrap(), D::new(15));
        assert_eq!(".5".parse::<D>().unwrap(), D::new(5_000));
        for bad in [
            "",
            "-",
            ".",
            "1.23456",
            "15E-5",
            "abc",
            "1..2",
            "1e",
            "100000000000000000",
        ] {
            assert!(bad.parse::<D>().is_err(), "{bad}");
        }
    }

    #[test]
    fn arrow_round_trip() {
        let items = vec![
            Some(D::new(1)),
            None,
            Some(D::new(-99_999_999_999_999_999_999)),
        ];
        let array = D::to_array(items.clone()).unwrap();
        assert_eq!(array.data_type(), &DataType::Decimal128(20, 4));
        let back: Vec<_> = (0..3)
            .map(|i| D::from_array(array.as_ref(), i).unwrap())
            .collect();
        assert_eq!(back, items);
        assert!(D::to_array(vec![Some(D::new(10i128.pow(20)))]).is_err());
        assert!(Decimal::<18, 4>::from_array(array.as_ref(), 0).is_err());
        assert!(Decimal::<20, 2>::from_array(array.as_ref(), 0).is_err());
        assert!(D::from_array(array.as_ref(), 3).is_err());
    }
}
