//! How the generator writes values: ids and timestamps in the crate's text forms, the store's
//! currency and tax, and the arithmetic of amounts and of events spread over days.

use rusqlite::types::ToSqlOutput;
use rusqlite::ToSql;
use uuid::Uuid;

use crate::testkit::reference::{DAY_MS, HOUR_MS, MINUTE_MS};

pub(super) const CURRENCY: &str = "USD";
/// Sales tax on taxable lines, in basis points (8.25 %).
pub(super) const TAX_BP: i64 = 825;

/// A row id bound as canonical lowercase hyphenated text.
pub(super) struct Id(pub(super) Uuid);

impl ToSql for Id {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        Ok(ToSqlOutput::from(
            self.0.hyphenated().encode_lower(&mut buf).to_owned(),
        ))
    }
}

/// A timestamp (milliseconds since the epoch) bound in the crate's text form.
pub(super) struct Ts(pub(super) i64);

impl ToSql for Ts {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(ts_text(self.0)))
    }
}

pub(super) fn oid(id: Option<Uuid>) -> Option<Id> {
    id.map(Id)
}

pub(super) fn ots(ms: Option<i64>) -> Option<Ts> {
    ms.map(Ts)
}

/// `2026-03-04T10:15:30.123Z`, exactly what [`crate::Timestamp`] prints, for years 0 to 9999,
/// without chrono's general formatter (the generator writes millions of these).
pub(super) fn ts_text(ms: i64) -> String {
    let days = ms.div_euclid(DAY_MS);
    let in_day = ms.rem_euclid(DAY_MS);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut s = String::with_capacity(24);
    let mut digits = |v: i64, width: u32, sep: char| {
        for k in (0..width).rev() {
            let d = (v / 10_i64.pow(k)) % 10;
            s.push(char::from(b'0' + d as u8));
        }
        s.push(sep);
    };
    digits(year, 4, '-');
    digits(month, 2, '-');
    digits(day, 2, 'T');
    digits(in_day / HOUR_MS, 2, ':');
    digits(in_day / MINUTE_MS % 60, 2, ':');
    digits(in_day / 1_000 % 60, 2, '.');
    digits(in_day % 1_000, 3, 'Z');
    s
}

/// Rounds `n / d` half away from zero (d > 0), so refunds mirror sales to the cent.
pub(super) fn div_round(n: i64, d: i64) -> i64 {
    if n >= 0 {
        (n + d / 2) / d
    } else {
        -((-n + d / 2) / d)
    }
}

/// How many of `total` evenly spread events fall on day `d` of `days`.
pub(super) fn share(total: u64, d: u32, days: u32) -> u64 {
    let at = |k: u32| (u128::from(total) * u128::from(k) / u128::from(days)) as u64;
    at(d + 1) - at(d)
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::Timestamp;

    #[test]
    fn timestamps_are_written_exactly_as_the_crate_writes_them() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let fixed = [
            0,
            951_782_400_000,     // 2000-02-29
            4_107_542_400_000,   // 2100-03-01
            1_772_619_330_123,   // 2026-03-04T10:15:30.123Z
            253_402_300_799_999, // 9999-12-31T23:59:59.999Z
        ];
        let random = (0..10_000).map(|_| rng.random_range(0..253_402_300_800_000_i64));
        for ms in fixed.into_iter().chain(random) {
            let expected = Timestamp::from_millis(ms).map(|t| t.to_rfc3339());
            assert_eq!(Some(ts_text(ms)), expected, "{ms}");
        }
    }
}
