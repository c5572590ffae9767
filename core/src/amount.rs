//! Amounts in base units: 1 WATT = 10^7 units, checked arithmetic, exact text.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Base units per WATT.
pub const UNITS_PER_WATT: u64 = 10_000_000;
const DECIMALS: usize = 7;

/// An amount of WATT in base units. Arithmetic is checked: overflow is an
/// error, never a wrap (SPEC §1).
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Amount(pub u64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount arithmetic overflowed")]
    Overflow,
    #[error("amount arithmetic went below zero")]
    Underflow,
    #[error("{input:?} is not an amount: {reason} (write e.g. \"12.5 WATT\" or \"12.5\")")]
    Parse { input: String, reason: &'static str },
}

impl Amount {
    pub const ZERO: Amount = Amount(0);

    pub const fn from_units(units: u64) -> Amount {
        Amount(units)
    }
    pub fn from_watt(watt: u64) -> Result<Amount, AmountError> {
        watt.checked_mul(UNITS_PER_WATT).map(Amount).ok_or(AmountError::Overflow)
    }
    pub const fn units(self) -> u64 {
        self.0
    }
    pub fn checked_add(self, rhs: Amount) -> Result<Amount, AmountError> {
        self.0.checked_add(rhs.0).map(Amount).ok_or(AmountError::Overflow)
    }
    pub fn checked_sub(self, rhs: Amount) -> Result<Amount, AmountError> {
        self.0.checked_sub(rhs.0).map(Amount).ok_or(AmountError::Underflow)
    }
    pub fn checked_mul(self, k: u64) -> Result<Amount, AmountError> {
        self.0.checked_mul(k).map(Amount).ok_or(AmountError::Overflow)
    }
    /// `floor(self × num / den)` computed in `u128`, checked to fit `u64`
    /// (the reward rule of SPEC §1/§5).
    pub fn mul_div_floor(self, num: u64, den: u64) -> Result<Amount, AmountError> {
        if den == 0 {
            return Err(AmountError::Overflow);
        }
        let v = u128::from(self.0) * u128::from(num) / u128::from(den);
        u64::try_from(v).map(Amount).map_err(|_| AmountError::Overflow)
    }
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

/// Shows the exact value with trailing zeros trimmed: `12.5 WATT`, `0.0000001 WATT`.
impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / UNITS_PER_WATT;
        let frac = self.0 % UNITS_PER_WATT;
        if frac == 0 {
            write!(f, "{whole} WATT")
        } else {
            let digits = format!("{frac:0width$}", width = DECIMALS);
            write!(f, "{whole}.{} WATT", digits.trim_end_matches('0'))
        }
    }
}

/// Parses `"12.5 WATT"`, `"12.5"`, `"0.0000001 watt"`. No floats: the decimal
/// text is read digit by digit; more than 7 decimals is an error, not a rounding.
impl FromStr for Amount {
    type Err = AmountError;
    fn from_str(input: &str) -> Result<Amount, AmountError> {
        let err = |reason| AmountError::Parse { input: input.to_string(), reason };
        let mut text = input.trim();
        if let Some(stripped) = text.strip_suffix("WATT").or_else(|| text.strip_suffix("watt")) {
            text = stripped.trim_end();
        }
        let (whole, frac) = match text.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (text, None),
        };
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("the whole part must be decimal digits"));
        }
        let mut units: u64 = 0;
        for b in whole.bytes() {
            units = units
                .checked_mul(10)
                .and_then(|u| u.checked_add(u64::from(b - b'0')))
                .ok_or_else(|| err("too large"))?;
        }
        units = units.checked_mul(UNITS_PER_WATT).ok_or_else(|| err("too large"))?;
        if let Some(frac) = frac {
            if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err("the fraction must be decimal digits"));
            }
            if frac.len() > DECIMALS {
                return Err(err("more than 7 decimal places (1 unit = 0.0000001 WATT)"));
            }
            let mut f: u64 = 0;
            for b in frac.bytes() {
                f = f * 10 + u64::from(b - b'0');
            }
            f *= 10u64.pow((DECIMALS - frac.len()) as u32);
            units = units.checked_add(f).ok_or_else(|| err("too large"))?;
        }
        Ok(Amount(units))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_exactly() {
        assert_eq!(Amount(125_000_000).to_string(), "12.5 WATT");
        assert_eq!(Amount(1).to_string(), "0.0000001 WATT");
        assert_eq!(Amount(0).to_string(), "0 WATT");
        assert_eq!(Amount(u64::MAX).to_string(), "1844674407370.9551615 WATT");
    }

    #[test]
    fn parses_exactly() {
        assert_eq!("12.5 WATT".parse::<Amount>().unwrap(), Amount(125_000_000));
        assert_eq!("12.5".parse::<Amount>().unwrap(), Amount(125_000_000));
        assert_eq!("0.0000001 watt".parse::<Amount>().unwrap(), Amount(1));
        assert_eq!("1844674407370.9551615".parse::<Amount>().unwrap(), Amount(u64::MAX));
    }

    #[test]
    fn rejects_bad_text() {
        for bad in
            ["", "WATT", "1.", ".5", "-1", "1e3", "0.00000001", "1,5", "1844674407370.9551616", "99999999999999999999"]
        {
            assert!(bad.parse::<Amount>().is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(Amount(u64::MAX).checked_add(Amount(1)), Err(AmountError::Overflow));
        assert_eq!(Amount(0).checked_sub(Amount(1)), Err(AmountError::Underflow));
        assert_eq!(Amount(u64::MAX).mul_div_floor(3, 2), Err(AmountError::Overflow));
        assert_eq!(Amount(u64::MAX).mul_div_floor(2, 3), Ok(Amount(12_297_829_382_473_034_410)));
        assert_eq!(Amount(10).mul_div_floor(1, 3), Ok(Amount(3)));
    }

    proptest! {
        // Display then parse is the identity on every amount.
        #[test]
        fn display_parse_round_trip(units in any::<u64>()) {
            let a = Amount(units);
            prop_assert_eq!(a.to_string().parse::<Amount>().unwrap(), a);
        }
    }
}
