//! Kubernetes resource quantities (`500m`, `1.5Gi`, `1e3`), as upstream's
//! `k8s.io/apimachinery/pkg/api/resource.Quantity`: parsing with the same error
//! messages, scaled integer values rounded up, and the canonical wire form.

use std::cmp::Ordering;
use std::fmt;

/// Why a quantity string was rejected (upstream's `ErrFormatWrong` / `ErrSuffix`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")]
    FormatWrong,
    #[error("unable to parse quantity's suffix")]
    Suffix,
}

/// How a quantity was written; the canonical form keeps the family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `Ki`, `Mi`, ...
    BinarySI,
    /// `n`, `u`, `m`, ``, `k`, `M`, ...
    DecimalSI,
    /// `1e3`, `5E-3`
    DecimalExponent,
}

/// A parsed quantity: `mantissa * 10^exp10 * 2^exp2`, sign separate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedQuantity {
    negative: bool,
    mantissa: u128,
    exp10: i32,
    exp2: u32,
    format: Format,
}

/// Significant digits kept exactly; beyond this the value is rounded up.
const MAX_DIGITS: usize = 36;

impl ParsedQuantity {
    pub fn parse(s: &str) -> Result<ParsedQuantity, QuantityError> {
        if s.is_empty() {
            return Err(QuantityError::FormatWrong);
        }
        let bytes = s.as_bytes();
        let mut pos = 0;
        let mut negative = false;
        match bytes[0] {
            b'-' => {
                negative = true;
                pos = 1;
            }
            b'+' => pos = 1,
            _ => {}
        }
        let int_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        let int_part = &s[int_start..pos];
        let mut frac_part = "";
        let mut has_dot = false;
        if pos < bytes.len() && bytes[pos] == b'.' {
            has_dot = true;
            pos += 1;
            let frac_start = pos;
            while pos < bytes.len() && bytes[pos].is_ascii_digit() {
                pos += 1;
            }
            frac_part = &s[frac_start..pos];
        }
        if int_part.is_empty() && !has_dot {
            return Err(QuantityError::FormatWrong);
        }
        let suffix = &s[pos..];
        // The suffix must look like `[eEinumkKMGTP]*[-+]?[0-9]*`.
        let letters_end = suffix
            .find(|c: char| !"eEinumkKMGTP".contains(c))
            .unwrap_or(suffix.len());
        let rest = &suffix[letters_end..];
        let rest = rest.strip_prefix(['-', '+']).unwrap_or(rest);
        if !rest.bytes().all(|b| b.is_ascii_digit()) {
            return Err(QuantityError::FormatWrong);
        }
        let (exp10_suffix, exp2, format) = parse_suffix(suffix)?;

        let mut exp10 = exp10_suffix
            .checked_sub(i32::try_from(frac_part.len()).map_err(|_| QuantityError::FormatWrong)?)
            .ok_or(QuantityError::FormatWrong)?;
        // The digits without leading zeros: the first MAX_DIGITS (which fit a u128)
        // are the mantissa, the rest raise the exponent and round it up if not zero.
        let (mut mantissa, mut kept, mut dropped, mut dropped_nonzero) = (0u128, 0, 0usize, false);
        for b in int_part.bytes().chain(frac_part.bytes()) {
            if kept == 0 && b == b'0' {
                continue;
            }
            if kept < MAX_DIGITS {
                mantissa = mantissa * 10 + u128::from(b - b'0');
                kept += 1;
            } else {
                dropped += 1;
                dropped_nonzero |= b != b'0';
            }
        }
        if dropped > 0 {
            exp10 = exp10.saturating_add(i32::try_from(dropped).unwrap_or(i32::MAX));
            if dropped_nonzero {
                mantissa += 1;
            }
        }
        Ok(ParsedQuantity {
            negative: negative && mantissa != 0,
            mantissa,
            exp10,
            exp2,
            format,
        })
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn is_zero(&self) -> bool {
        self.mantissa == 0
    }

    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// `ceil(|value| * 10^scale)` (away from zero), saturating.
    fn scaled_magnitude(&self, scale: i32) -> u128 {
        if self.mantissa == 0 {
            return 0;
        }
        let e = self.exp10.saturating_add(scale);
        let mut m = self.mantissa;
        if e >= 0 {
            let Some(p) = pow10(e as u32) else {
                return u128::MAX;
            };
            m = m.saturating_mul(p);
            shl_saturating(m, self.exp2)
        } else {
            let shifted = shl_saturating(m, self.exp2);
            let Some(p) = pow10(e.unsigned_abs()) else {
                return 1;
            };
            if shifted == u128::MAX {
                // Too big to shift exactly: divide first, then shift.
                let q = m.div_ceil(p);
                return shl_saturating(q, self.exp2);
            }
            shifted.div_ceil(p)
        }
    }

    fn scaled_i64(&self, scale: i32) -> i64 {
        let mag = i64::try_from(self.scaled_magnitude(scale)).unwrap_or(i64::MAX);
        if self.negative {
            -mag
        } else {
            mag
        }
    }

    /// The value in thousandths (cpu millicores), rounded up.
    pub fn milli_value(&self) -> i64 {
        self.scaled_i64(3)
    }

    /// The integer value (bytes), rounded up.
    pub fn value(&self) -> i64 {
        self.scaled_i64(0)
    }

    /// The value in nano units, saturating; used for exact comparisons.
    fn nanos(&self) -> i128 {
        let mag = i128::try_from(self.scaled_magnitude(9)).unwrap_or(i128::MAX);
        if self.negative {
            -mag
        } else {
            mag
        }
    }

    /// Compares two quantities by value (upstream `Quantity.Cmp`), at nano precision.
    pub fn cmp_value(&self, other: &ParsedQuantity) -> Ordering {
        self.nanos().cmp(&other.nanos())
    }

    /// The value rounded up (away from zero) to a multiple of 0.001, keeping the format;
    /// upstream applies this to every container resource quantity.
    pub fn rounded_up_to_milli(&self) -> ParsedQuantity {
        let milli = self.scaled_magnitude(3);
        ParsedQuantity {
            negative: self.negative && milli != 0,
            mantissa: milli,
            exp10: -3,
            exp2: 0,
            format: self.format,
        }
    }

    /// Upstream's canonical string: `1000m` → `1`, `0.5` → `500m`, `1024Mi` → `1Gi`,
    /// `1.5Gi` → `1536Mi`; values are rounded up to nano precision.
    pub fn canonical(&self) -> String {
        // Built by hand: `format!` cost more than the arithmetic (this runs for every
        // request and limit of every container created).
        let canonical = |negative: bool, v: u128, suffix: &str| {
            let mut digits = itoa::Buffer::new();
            let digits = digits.format(v);
            let mut s = String::with_capacity(1 + digits.len() + suffix.len());
            if negative {
                s.push('-');
            }
            s.push_str(digits);
            s.push_str(suffix);
            s
        };
        let nanos = self.nanos();
        let negative = nanos < 0;
        let mag = nanos.unsigned_abs();
        if mag == 0 {
            return "0".to_string();
        }
        const NANO: u128 = 1_000_000_000;
        if self.format == Format::BinarySI && mag.is_multiple_of(NANO) && mag / NANO >= 1024 {
            let mut v = mag / NANO;
            let mut idx = 0;
            const BIN: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
            while idx < BIN.len() - 1 && v.is_multiple_of(1024) {
                v /= 1024;
                idx += 1;
            }
            return canonical(negative, v, BIN[idx]);
        }
        let mut v = mag;
        let mut e: i32 = -9;
        let max_e = if self.format == Format::DecimalExponent {
            i32::MAX
        } else {
            18
        };
        while v.is_multiple_of(1000) && e < max_e {
            v /= 1000;
            e += 3;
        }
        if self.format == Format::DecimalExponent {
            if e == 0 {
                canonical(negative, v, "")
            } else {
                canonical(negative, v, &format!("e{e}"))
            }
        } else {
            let suffix = match e {
                -9 => "n",
                -6 => "u",
                -3 => "m",
                0 => "",
                3 => "k",
                6 => "M",
                9 => "G",
                12 => "T",
                15 => "P",
                _ => "E",
            };
            canonical(negative, v, suffix)
        }
    }
}

impl fmt::Display for ParsedQuantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

impl std::str::FromStr for ParsedQuantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ParsedQuantity::parse(s)
    }
}

/// Formats millicores the way upstream prints a DecimalSI quantity: `500m`, `2`, `1500m`.
pub fn format_milli(milli: i64) -> String {
    if milli % 1000 == 0 {
        format!("{}", milli / 1000)
    } else {
        format!("{milli}m")
    }
}

/// Formats a byte count as upstream prints a BinarySI quantity: `1Gi`, `1536Mi`, `1000`.
pub fn format_bytes(bytes: i64) -> String {
    let q = ParsedQuantity {
        negative: bytes < 0,
        mantissa: u128::from(bytes.unsigned_abs()),
        exp10: 0,
        exp2: 0,
        format: Format::BinarySI,
    };
    q.canonical()
}

fn parse_suffix(suffix: &str) -> Result<(i32, u32, Format), QuantityError> {
    let dec = |e: i32| Ok((e, 0, Format::DecimalSI));
    let bin = |e: u32| Ok((0, e, Format::BinarySI));
    match suffix {
        "" => dec(0),
        "n" => dec(-9),
        "u" => dec(-6),
        "m" => dec(-3),
        "k" => dec(3),
        "M" => dec(6),
        "G" => dec(9),
        "T" => dec(12),
        "P" => dec(15),
        "E" => dec(18),
        "Ki" => bin(10),
        "Mi" => bin(20),
        "Gi" => bin(30),
        "Ti" => bin(40),
        "Pi" => bin(50),
        "Ei" => bin(60),
        _ => {
            let exp = suffix
                .strip_prefix(['e', 'E'])
                .ok_or(QuantityError::Suffix)?;
            let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(QuantityError::Suffix);
            }
            let e: i32 = exp.parse().map_err(|_| QuantityError::Suffix)?;
            Ok((e, 0, Format::DecimalExponent))
        }
    }
}

fn pow10(e: u32) -> Option<u128> {
    10u128.checked_pow(e)
}

fn shl_saturating(m: u128, bits: u32) -> u128 {
    if m == 0 {
        return 0;
    }
    if bits >= m.leading_zeros() {
        u128::MAX
    } else {
        m << bits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> ParsedQuantity {
        ParsedQuantity::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn milli_and_byte_values() {
        assert_eq!(q("500m").milli_value(), 500);
        assert_eq!(q("1").milli_value(), 1000);
        assert_eq!(q("0.5").milli_value(), 500);
        assert_eq!(q("1.5").value(), 2, "rounds up");
        assert_eq!(q("100n").milli_value(), 1, "rounds up");
        assert_eq!(q("250u").milli_value(), 1);
        assert_eq!(q("1k").value(), 1000);
        assert_eq!(q("1M").value(), 1_000_000);
        assert_eq!(q("1G").value(), 1_000_000_000);
        assert_eq!(q("2T").value(), 2_000_000_000_000);
        assert_eq!(q("1P").value(), 1_000_000_000_000_000);
        assert_eq!(q("1E").value(), 1_000_000_000_000_000_000);
        assert_eq!(q("1Ki").value(), 1024);
        assert_eq!(q("128Mi").value(), 128 * 1024 * 1024);
        assert_eq!(q("1.5Gi").value(), 1536 * 1024 * 1024);
        assert_eq!(q("1Ti").value(), 1 << 40);
        assert_eq!(q("1Pi").value(), 1 << 50);
        assert_eq!(q("1Ei").value(), 1 << 60);
        assert_eq!(q("1e3").value(), 1000);
        assert_eq!(q("1E3").value(), 1000);
        assert_eq!(q("5e-3").milli_value(), 5);
        assert_eq!(q("-2").milli_value(), -2000);
        assert_eq!(q("+2").value(), 2);
        assert_eq!(q("0").value(), 0);
        assert_eq!(q("100Ei").value(), i64::MAX, "saturates");
    }

    #[test]
    fn rejects_bad_input_with_upstream_messages() {
        for bad in ["", "abc", "1.2.3", "1 Gi", "Gi", "1Gi1x", "1Kb"] {
            assert_eq!(
                ParsedQuantity::parse(bad),
                Err(QuantityError::FormatWrong),
                "{bad}"
            );
        }
        for bad in ["1K", "1mi", "1e", "1ee3", "1k3"] {
            assert_eq!(
                ParsedQuantity::parse(bad),
                Err(QuantityError::Suffix),
                "{bad}"
            );
        }
        assert_eq!(
            QuantityError::FormatWrong.to_string(),
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        );
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(q("1000m").canonical(), "1");
        assert_eq!(q("0.5").canonical(), "500m");
        assert_eq!(q("1024Mi").canonical(), "1Gi");
        assert_eq!(q("1.5Gi").canonical(), "1536Mi");
        assert_eq!(q("512Ki").canonical(), "512Ki");
        assert_eq!(q("100Mi").canonical(), "100Mi");
        assert_eq!(q("1e3").canonical(), "1e3");
        assert_eq!(q("1500").canonical(), "1500");
        assert_eq!(q("2000").canonical(), "2k");
        assert_eq!(q("0.1Ki").canonical(), "102400m");
        assert_eq!(q("0").canonical(), "0");
        assert_eq!(q("-1.5").canonical(), "-1500m");
        assert_eq!(q("0.0001").rounded_up_to_milli().canonical(), "1m");
        assert_eq!(q("1.5Gi").rounded_up_to_milli().canonical(), "1536Mi");
        assert_eq!(q("100n").rounded_up_to_milli().canonical(), "1m");
        assert_eq!(format_milli(500), "500m");
        assert_eq!(format_milli(2000), "2");
        assert_eq!(format_bytes(1 << 30), "1Gi");
        assert_eq!(
            format_bytes(1000),
            "1k",
            "BinarySI below 1024 prints as DecimalSI upstream"
        );
    }

    #[test]
    fn compares_by_value() {
        assert_eq!(q("1").cmp_value(&q("1000m")), Ordering::Equal);
        assert_eq!(q("1Gi").cmp_value(&q("1G")), Ordering::Greater);
        assert_eq!(q("250m").cmp_value(&q("0.5")), Ordering::Less);
    }

    #[test]
    fn leading_zeros_are_skipped_and_digits_past_36_round_up() {
        assert_eq!(q("007").canonical(), "7");
        assert_eq!(q("000.5").canonical(), "500m");
        assert!(q("0000").is_zero());
        // 36 digits are kept; the rest raise the exponent, and round the last kept
        // digit up unless they are all zeros.
        let long = "123456789012345678901234567890123456";
        let rounded = q(&format!("{long}7891"));
        assert_eq!(
            (rounded.mantissa, rounded.exp10),
            (123_456_789_012_345_678_901_234_567_890_123_457, 4)
        );
        let exact = q(&format!("{long}0000"));
        assert_eq!(
            (exact.mantissa, exact.exp10),
            (123_456_789_012_345_678_901_234_567_890_123_456, 4)
        );
        let fraction = q(&format!("0.{long}1"));
        assert_eq!(
            (fraction.mantissa, fraction.exp10),
            (123_456_789_012_345_678_901_234_567_890_123_457, -36)
        );
    }
}
