//! Integer money arithmetic and its one rounding rule.
//!
//! Amounts are `i64` minor units (cents), quantities `i64` thousandths of a unit, rates parts
//! per million. Every product of two of them is computed exactly in `i128` and rounded once,
//! **half away from zero** (2.5 → 3, −2.5 → −3), so a refund of a line computes the mirror image
//! of what its sale computed. Taxes and discounts are rounded per line; a sale's figures are
//! sums of its lines' rounded figures, so the receipt always adds up.

use super::FlowError;

/// `value × num / den`, rounded half away from zero; `None` on overflow or `den == 0`.
pub fn mul_div_round(value: i64, num: i64, den: i64) -> Option<i64> {
    if den == 0 {
        return None;
    }
    let n = i128::from(value) * i128::from(num);
    let d = i128::from(den);
    let q = n / d;
    let r = n % d;
    // |r| * 2 >= |d| means the remainder is at least half: round away from zero.
    let q = if r.abs() * 2 >= d.abs() {
        if (n < 0) != (d < 0) {
            q - 1
        } else {
            q + 1
        }
    } else {
        q
    };
    i64::try_from(q).ok()
}

/// `amount × ppm / 1,000,000`, rounded half away from zero (a tax or a percentage discount).
pub fn apply_ppm(amount: i64, ppm: i64) -> Result<i64, FlowError> {
    mul_div_round(amount, ppm, 1_000_000).ok_or(FlowError::Overflow)
}

/// The amount of `quantity_milli` thousandths of a unit at `unit_minor` each, rounded half away
/// from zero.
pub fn extend(quantity_milli: i64, unit_minor: i64) -> Result<i64, FlowError> {
    mul_div_round(quantity_milli, unit_minor, 1000).ok_or(FlowError::Overflow)
}

/// Minor units in one major unit of an ISO 4217 currency (100 for USD, 1 for JPY, 1000 for
/// KWD).
pub fn minor_per_major(currency: &str) -> i64 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 1,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 1000,
        "CLF" | "UYW" => 10_000,
        _ => 100,
    }
}

/// Sum of amounts, refusing overflow.
pub(crate) fn sum(values: impl IntoIterator<Item = i64>) -> Result<i64, FlowError> {
    values
        .into_iter()
        .try_fold(0i64, |acc, v| acc.checked_add(v))
        .ok_or(FlowError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn halves_round_away_from_zero() {
        assert_eq!(mul_div_round(5, 1, 2), Some(3));
        assert_eq!(mul_div_round(-5, 1, 2), Some(-3));
        assert_eq!(mul_div_round(4, 1, 3), Some(1));
        assert_eq!(mul_div_round(-4, 1, 3), Some(-1));
        assert_eq!(mul_div_round(1, 1, 0), None);
        // 8.875 % of $19.99 is 177.41 cents.
        assert_eq!(apply_ppm(1999, 88_750).ok(), Some(177));
        // 1.5 units at $3.33 is 499.5 cents.
        assert_eq!(extend(1500, 333).ok(), Some(500));
        assert_eq!(extend(-1500, 333).ok(), Some(-500));
        assert!(extend(i64::MAX, 1_000_000).is_err());
    }

    proptest! {
        #[test]
        fn rounding_is_symmetric_and_within_half_a_unit(
            v in -1_000_000_000i64..1_000_000_000, ppm in 0i64..=1_000_000,
        ) {
            let r = apply_ppm(v, ppm).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(apply_ppm(-v, ppm).ok(), Some(-r));
            let exact = i128::from(v) * i128::from(ppm);
            let err = (i128::from(r) * 1_000_000 - exact).abs();
            prop_assert!(err * 2 <= 1_000_000);
        }
    }
}
