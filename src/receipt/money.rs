//! Money and quantities written by the tenant's locale from CLDR data (ICU4X), never by rules
//! kept here: the symbol, its place, the grouping and decimal separators, the minus sign and
//! the currency's fraction digits are all the locale's and the currency's.

use fixed_decimal::Decimal;
use icu_decimal::DecimalFormatter;
use icu_experimental::dimension::currency::formatter::CurrencyFormatter;
use icu_experimental::dimension::currency::CurrencyType;
use icu_experimental::dimension::percent::formatter::PercentFormatter;
use icu_locale_core::Locale;

use super::ReceiptError;
use crate::pos::money::minor_per_major;

/// Formats amounts of one currency and quantities for one locale.
pub struct MoneyFormat {
    currency: CurrencyFormatter<DecimalFormatter>,
    number: DecimalFormatter,
    percent: PercentFormatter<DecimalFormatter>,
    /// Decimal places of a minor unit (2 for USD, 0 for JPY).
    scale: i16,
}

impl std::fmt::Debug for MoneyFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MoneyFormat")
            .field("scale", &self.scale)
            .finish_non_exhaustive()
    }
}

impl MoneyFormat {
    /// A formatter for `currency` (ISO 4217) in `locale` (a BCP 47 tag such as `de-DE`).
    pub fn new(locale: &str, currency: &str) -> Result<Self, ReceiptError> {
        let loc =
            Locale::try_from_str(locale).map_err(|_| ReceiptError::Locale(locale.to_owned()))?;
        let code = CurrencyType::try_from_str(&currency.to_ascii_lowercase())
            .map_err(|_| ReceiptError::Currency(currency.to_owned()))?;
        let fmt = CurrencyFormatter::try_new_symbol((&loc).into(), code, Default::default())
            .map_err(|e| ReceiptError::LocaleData {
                locale: locale.to_owned(),
                reason: e.to_string(),
            })?;
        let number = DecimalFormatter::try_new((&loc).into(), Default::default()).map_err(|e| {
            ReceiptError::LocaleData {
                locale: locale.to_owned(),
                reason: e.to_string(),
            }
        })?;
        let percent =
            PercentFormatter::try_new((&loc).into(), Default::default()).map_err(|e| {
                ReceiptError::LocaleData {
                    locale: locale.to_owned(),
                    reason: e.to_string(),
                }
            })?;
        // minor_per_major is a power of ten (1, 100, 1000, 10000): its digits less one.
        let scale = i16::try_from(minor_per_major(currency).to_string().len() - 1).unwrap_or(2);
        Ok(Self {
            currency: fmt,
            number,
            percent,
            scale,
        })
    }

    /// An amount in minor units: `$1,234.50`, `1.234,50 €`, `￥1,235`.
    pub fn money(&self, minor: i64) -> String {
        let mut d = Decimal::from(minor);
        d.absolute.multiply_pow10(-self.scale);
        let text = self.currency.format_fixed_decimal(&d).to_string();
        text
    }

    /// A rate in parts per million as a percentage, without trailing zeros: `8%`, `8,875 %`.
    pub fn percent(&self, ppm: u32) -> String {
        let mut d = Decimal::from(ppm);
        d.absolute.multiply_pow10(-4);
        d.absolute.trim_end();
        self.percent.format(&d).to_string()
    }

    /// A quantity in thousandths, without trailing zeros: `2`, `1.5`, `1,5`.
    pub fn quantity(&self, milli: i64) -> String {
        let mut d = Decimal::from(milli);
        d.absolute.multiply_pow10(-3);
        d.absolute.trim_end();
        self.number.format(&d).to_string()
    }
}
