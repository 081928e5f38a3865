//! The tenant registry: who the tenants are, their status, plan, tier and white-label settings.

use std::collections::BTreeMap;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};
use serde::{Deserialize, Serialize};

use crate::ids::{TenantId, Timestamp};

/// Implements text conversion (Display, FromStr, SQL) for a fieldless enum stored as a word.
/// Paths are absolute so any module of the crate can use it (the catalog's payment methods).
macro_rules! text_enum {
    ($ty:ident, $what:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// Every stored word, in the order of [`Self::ALL`].
            pub const WORDS: &'static [&'static str] = &[$($text),+];

            /// The stored word.
            pub fn as_str(&self) -> &'static str {
                match self { $($ty::$variant => $text),+ }
            }
        }
        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl ::std::str::FromStr for $ty {
            type Err = $crate::tenant::settings::UnknownWord;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($ty::$variant),)+
                    _ => Err($crate::tenant::settings::UnknownWord {
                        what: $what,
                        found: s.to_owned(),
                        expected: Self::WORDS,
                    }),
                }
            }
        }
        impl ::rusqlite::types::ToSql for $ty {
            fn to_sql(&self) -> ::rusqlite::Result<::rusqlite::types::ToSqlOutput<'_>> {
                Ok(::rusqlite::types::ToSqlOutput::Borrowed(
                    ::rusqlite::types::ValueRef::Text(self.as_str().as_bytes()),
                ))
            }
        }
        impl ::rusqlite::types::FromSql for $ty {
            fn column_result(
                value: ::rusqlite::types::ValueRef<'_>,
            ) -> ::rusqlite::types::FromSqlResult<Self> {
                value
                    .as_str()?
                    .parse()
                    .map_err(|e| ::rusqlite::types::FromSqlError::Other(Box::new(e)))
            }
        }
    };
}
pub(crate) use text_enum;

/// A word that is not one of the values an enum accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{found:?} is not a {what}; expected one of {expected:?}")]
pub struct UnknownWord {
    /// What kind of value was expected.
    pub what: &'static str,
    /// The rejected text.
    pub found: String,
    /// The accepted words.
    pub expected: &'static [&'static str],
}

/// Whether a tenant may read and write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TenantStatus {
    /// Reads and writes.
    Active,
    /// Reads only (for example, an unpaid invoice).
    Suspended,
    /// Neither.
    Cancelled,
}
text_enum!(TenantStatus, "tenant status", {
    Active => "active", Suspended => "suspended", Cancelled => "cancelled",
});

impl TenantStatus {
    /// Every change of status a tenant may go through, `(from, to)`: active and suspended to
    /// each other, and either to cancelled. Cancelled is final: nothing leaves it, so a
    /// cancelled tenant's data is never readable again (a suspension would make it readable,
    /// an activation writable). [`crate::Store::set_tenant_status`] refuses any other change.
    pub const TRANSITIONS: &'static [(TenantStatus, TenantStatus)] = &[
        (TenantStatus::Active, TenantStatus::Suspended),
        (TenantStatus::Suspended, TenantStatus::Active),
        (TenantStatus::Active, TenantStatus::Cancelled),
        (TenantStatus::Suspended, TenantStatus::Cancelled),
    ];

    /// Whether a tenant of this status may be set to `next`: one of
    /// [`TenantStatus::TRANSITIONS`], or `next` the status it has (a change of nothing).
    ///
    /// ```
    /// use pos_tenancy::TenantStatus::*;
    /// assert!(Active.can_become(Suspended) && Suspended.can_become(Active));
    /// assert!(Suspended.can_become(Cancelled) && Cancelled.can_become(Cancelled));
    /// assert!(!Cancelled.can_become(Suspended) && !Cancelled.can_become(Active));
    /// ```
    pub fn can_become(self, next: TenantStatus) -> bool {
        self == next || Self::TRANSITIONS.contains(&(self, next))
    }
}

/// A commercial plan, which sets default limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Plan {
    /// A single small store.
    Free,
    /// A store with several terminals.
    Pro,
    /// A chain.
    Enterprise,
}
text_enum!(Plan, "plan", { Free => "free", Pro => "pro", Enterprise => "enterprise" });

/// What a plan allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct PlanLimits {
    /// Most users (staff accounts) the tenant may have.
    pub max_users: u32,
    /// Most calls to the central API per calendar month.
    pub max_api_calls_month: u64,
}

impl PlanLimits {
    /// Limits as stored in SQL (signed integers that CHECK constraints keep non-negative).
    pub(crate) fn from_sql(max_users: i64, max_api_calls_month: i64) -> Self {
        Self {
            max_users: u32::try_from(max_users).unwrap_or(u32::MAX),
            max_api_calls_month: u64::try_from(max_api_calls_month).unwrap_or(0),
        }
    }
}

impl Plan {
    /// The default limits of this plan.
    pub fn limits(&self) -> PlanLimits {
        match self {
            Plan::Free => PlanLimits {
                max_users: 3,
                max_api_calls_month: 10_000,
            },
            Plan::Pro => PlanLimits {
                max_users: 25,
                max_api_calls_month: 1_000_000,
            },
            Plan::Enterprise => PlanLimits {
                max_users: 1_000,
                max_api_calls_month: 100_000_000,
            },
        }
    }
}

/// Where a tenant's rows live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Tier {
    /// In the node's shared database, next to other tenants' rows.
    Shared,
    /// In a database file of its own.
    Dedicated,
}
text_enum!(Tier, "isolation tier", { Shared => "shared", Dedicated => "dedicated" });

/// A staff role. Ordered: a manager may do what a cashier may, an admin what a manager may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Role {
    /// Rings up sales, takes payments, adds customers.
    Cashier,
    /// Also manages the catalogue, prices, promotions and stock.
    Manager,
    /// Also manages users, roles, devices, backups and the tenant's settings.
    Admin,
}
text_enum!(Role, "role", { Cashier => "cashier", Manager => "manager", Admin => "admin" });

/// A feature switch of a tenant: a part of the POS flows ([`crate::pos`]) a vendor sells as an
/// option and a tenant's settings switch on or off ([`TenantSettings::features`]).
///
/// The list is closed: settings naming any other switch are refused when validated
/// ([`SettingsError::UnknownFeature`]), so a misspelt switch never passes silently. Each
/// switch is written in settings by its stable snake_case name ([`Feature::as_str`]). Every
/// switch is on unless the settings say otherwise, so settings written before the switches
/// existed keep every flow working.
///
/// A switched-off feature refuses the flows that start something of it with
/// [`crate::pos::FlowError::FeatureOff`], which names the switch, and writes nothing; the parts
/// a checkout does by itself (a price level, an automatic promotion, commission, points
/// earned) are left out instead, so a sale is never refused for them. What a feature wrote
/// while it was on stays readable (balances, reports, history) and refundable: refunds and
/// voids are never refused by a switch and give money back as
/// [`crate::pos::RefundTender`] says, to a gift card, store credit or loyalty account too.
/// Switches steer this terminal's flows only: rows another terminal wrote (pulled by the sync
/// engine) and the generic CRUD of [`crate::TenantAccess`] are not checked against them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Feature {
    /// Loyalty points. Default: on. Off: enrolling a customer, redeeming points and paying with
    /// points are refused; sales earn no points. Points held stay readable, and a refund still
    /// gives points back and takes back points a sale earned.
    Loyalty,
    /// Gift cards. Default: on. Off: issuing, selling, topping up and redeeming a gift card and
    /// paying with one are refused. Balances stay readable; a refund of a sale a card paid still
    /// loads the card back (or, with [`BusinessRules::allow_refund_to_any_tender`], goes back by
    /// another tender), and the card is spendable again once the switch is back on.
    GiftCards,
    /// Store credit (customer credit accounts with a limit). Default: on. Off: charging an
    /// account and paying with store credit are refused; a payment of what is owed is still
    /// taken ([`crate::pos::Pos::pay_credit`]), so no customer is kept in debt, and a refund
    /// still takes what it gives back off what is owed.
    StoreCredit,
    /// Layaways. Default: on. Off: opening a layaway is refused; a layaway already open can
    /// still be paid, completed and cancelled, so no customer's deposit is held by the switch.
    Layaways,
    /// Work orders. Default: on. Off: opening a work order is refused; one already open can
    /// still take parts and labour, be completed into a sale, or be cancelled.
    WorkOrders,
    /// Promotions and coupon codes. Default: on. Off: sales are priced without promotions and
    /// record no promotion use; a coupon code entered is refused.
    Promotions,
    /// Sales commission. Default: on. Off: sales (and completed layaways and work orders) earn
    /// no commission; the rules stay as they are. Nothing is refused. A refund still reverses
    /// commission a sale earned.
    Commissions,
    /// Customer price levels. Default: on. Off: products sell at their list price whatever the
    /// customer's price level. Nothing is refused.
    PriceLevels,
}
text_enum!(Feature, "feature switch", {
    Loyalty => "loyalty",
    GiftCards => "gift_cards",
    StoreCredit => "store_credit",
    Layaways => "layaways",
    WorkOrders => "work_orders",
    Promotions => "promotions",
    Commissions => "commissions",
    PriceLevels => "price_levels",
});

impl Feature {
    /// Whether the switch is on when the settings do not name it.
    pub fn default_on(self) -> bool {
        match self {
            Feature::Loyalty
            | Feature::GiftCards
            | Feature::StoreCredit
            | Feature::Layaways
            | Feature::WorkOrders
            | Feature::Promotions
            | Feature::Commissions
            | Feature::PriceLevels => true,
        }
    }
}

/// Why tenant settings were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// The brand name is empty or too long.
    #[error("brand name must be 1 to 100 characters, got {len}")]
    BrandName {
        /// Its length in characters.
        len: usize,
    },
    /// Not an ISO 4217 currency code.
    #[error("currency {0:?} is not an ISO 4217 code")]
    Currency(String),
    /// Not a language tag such as `en` or `en-US`.
    #[error("locale {0:?} is not a language tag like \"en\" or \"en-US\"")]
    Locale(String),
    /// Not a time zone of the IANA tz database.
    #[error("time zone {0:?} is not an IANA time zone name like \"Europe/Berlin\"")]
    TimeZone(String),
    /// A tax rate outside 0 to 100 %, or a duplicate or empty name.
    #[error("tax rate {name:?}: {reason}")]
    TaxRate {
        /// The rate's name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Not a DNS name.
    #[error("{what} {value:?} is not a valid DNS name")]
    Domain {
        /// Subdomain or custom domain.
        what: &'static str,
        /// The rejected value.
        value: String,
    },
    /// Receipt text too long.
    #[error("receipt {which} is {len} characters; at most 1000 are allowed")]
    ReceiptText {
        /// Header or footer.
        which: &'static str,
        /// Its length.
        len: usize,
    },
    /// A feature switch that is not one of [`Feature::ALL`].
    #[error(
        "unknown feature switch {name:?}; the switches are {}",
        known.join(", ")
    )]
    UnknownFeature {
        /// The name given.
        name: String,
        /// Every switch's name ([`Feature::WORDS`]).
        known: &'static [&'static str],
    },
    /// A business rule out of range.
    #[error("business rule {name}: {reason}")]
    Rule {
        /// The rule's field name.
        name: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// The settings are not valid JSON for this structure.
    #[error("settings are malformed: {0}")]
    Malformed(String),
}

/// How a white-label tenant is reached on the web.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum Domain {
    /// `name.<platform domain>`; one DNS label.
    Subdomain(String),
    /// The tenant's own domain, such as `pos.capsautomotive.com`.
    Custom(String),
}

/// A named tax rate, in parts per million (8.875 % is `88_750`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct TaxRate {
    /// Shown on receipts, for example "State sales tax".
    pub name: String,
    /// Parts per million, 0 to 1,000,000.
    #[cfg_attr(feature = "server", schema(maximum = 1_000_000))]
    pub rate_ppm: u32,
}

/// A tenant's white-label and business settings, which nodes pull from the central server.
///
/// ```
/// use pos_tenancy::TenantSettings;
/// let mut s = TenantSettings::new("Caps Automotive");
/// s.currency = "USD".into();
/// assert!(s.validate().is_ok());
/// s.currency = "XYZ".into();
/// assert!(s.validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "server",
    derive(utoipa::ToSchema),
    schema(description = "White-label and business settings, validated on the server")
)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    /// The brand shown on screens and receipts.
    #[cfg_attr(feature = "server", schema(min_length = 1, max_length = 100))]
    pub brand_name: String,
    /// Where the tenant's web back office is reached, if anywhere.
    #[serde(default)]
    pub domain: Option<Domain>,
    /// ISO 4217 currency code of the store's prices.
    #[cfg_attr(feature = "server", schema(pattern = "^[A-Z]{3}$"))]
    pub currency: String,
    /// Language tag for formatting (`en-US`).
    pub locale: String,
    /// The store's time zone, an IANA name (`Europe/Berlin`), in which receipts give the time
    /// of sale; UTC when not set. Checked against the tz database bundled with the crate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Taxes applied at checkout.
    #[serde(default)]
    pub tax_rates: Vec<TaxRate>,
    /// Printed above each receipt.
    #[serde(default)]
    #[cfg_attr(feature = "server", schema(max_length = 1000))]
    pub receipt_header: String,
    /// Printed below each receipt.
    #[serde(default)]
    #[cfg_attr(feature = "server", schema(max_length = 1000))]
    pub receipt_footer: String,
    /// Feature switches, by name ([`Feature::as_str`]): `true` on, `false` off; a switch not
    /// named has its default ([`Feature::default_on`]). Read them with
    /// [`TenantSettings::feature`]. A name that is not a [`Feature`] is refused by
    /// [`TenantSettings::validate`]; settings stored before the list was closed may still hold
    /// one (they are read, the name is ignored, and the next write of the settings must drop
    /// it).
    #[serde(default)]
    pub features: BTreeMap<String, bool>,
    /// How the store's POS flows treat stock, cards, credit, loyalty and layaways.
    #[serde(default)]
    pub rules: BusinessRules,
}

/// What a receipt shows of the tenant's settings, copied onto each sale when it is made (the
/// `receipt_brand` column of [`crate::catalog::Sale`]), so a receipt reprinted years later, on
/// any terminal the sale synced to, shows the brand, texts, locale and tax rates in force when
/// the sale was made, not the settings of the day it is printed.
///
/// Written by the POS flows ([`TenantSettings::receipt_brand`]); read leniently (fields a newer
/// terminal adds are ignored, fields added later have defaults), since the snapshot travels
/// with the sale to terminals of other versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptBrand {
    /// The brand name.
    pub brand_name: String,
    /// The receipt header.
    #[serde(default)]
    pub receipt_header: String,
    /// The receipt footer.
    #[serde(default)]
    pub receipt_footer: String,
    /// The locale money, quantities and labels are written in.
    pub locale: String,
    /// The tax rates the sale's taxed lines were charged at. For a refund or void, its
    /// original sale's rates (a refund mirrors the tax its sale charged); empty when the
    /// original kept none.
    #[serde(default)]
    pub tax_rates: Vec<TaxRate>,
    /// The store's time zone (IANA name) receipts give the time of sale in; UTC when none
    /// (as a sale made before the setting existed was printed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

impl ReceiptBrand {
    /// As the `receipt_brand` column stores it. Serializing strings and integers cannot fail;
    /// `None` (the column's NULL, "no snapshot") would be the answer if it ever did.
    pub(crate) fn to_json(&self) -> Option<crate::ids::Json> {
        serde_json::to_value(self).ok().map(crate::ids::Json)
    }

    /// Read back from the `receipt_brand` column; `None` for a value that is not one (a
    /// snapshot is data from another terminal and is never trusted to parse).
    pub fn from_json(value: &crate::ids::Json) -> Option<Self> {
        serde_json::from_value(value.0.clone()).ok()
    }
}

/// A tenant's business rules for the POS flows ([`crate::pos`]). Each field has a default, so
/// settings written before a field existed still load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "server",
    derive(utoipa::ToSchema),
    schema(
        description = "Business rules of the POS flows; every field has a default",
        default
    )
)]
#[serde(deny_unknown_fields, default)]
pub struct BusinessRules {
    /// Sell a stocked product even when the count says there is not enough (many stores sell
    /// what the shelf has). Default: refused.
    pub allow_negative_stock: bool,
    /// Redeem more than a gift card holds, leaving it negative. Default: refused.
    pub allow_gift_card_overdraw: bool,
    /// Charge store credit past the account's limit. Default: refused.
    pub allow_credit_over_limit: bool,
    /// Loyalty points earned per whole currency unit of a sale's net amount (before tax, less
    /// what was paid with points), rounded down. 0 switches accrual off. Default: 1.
    pub loyalty_points_per_unit: u32,
    /// What one point is worth when redeemed, in minor units, at least 1. Default: 1.
    #[cfg_attr(feature = "server", schema(minimum = 1))]
    pub loyalty_point_value_minor: u32,
    /// Smallest deposit that opens a layaway, in parts per million of its total. Default:
    /// 100,000 (10 %).
    #[cfg_attr(feature = "server", schema(maximum = 1_000_000))]
    pub layaway_min_deposit_ppm: u32,
    /// Share of a cancelled layaway's payments the store keeps, in parts per million; the rest
    /// is refunded. Default: 0.
    #[cfg_attr(feature = "server", schema(maximum = 1_000_000))]
    pub layaway_cancellation_fee_ppm: u32,
    /// Whether labour lines of work orders are taxed. Default: no.
    pub tax_labour: bool,
    /// Refund by any tender, whatever the sale was paid with (a manager's override: some
    /// stores refund a card sale in cash). When off, every refund method is capped, across all
    /// refunds of a sale, at what the sale took by it: cash and card at what they paid, a gift
    /// card at what that card paid, store credit at what was charged to it, loyalty at the
    /// points redeemed (see [`crate::pos::RefundTender`]). Default: off.
    pub allow_refund_to_any_tender: bool,
}

impl Default for BusinessRules {
    fn default() -> Self {
        Self {
            allow_negative_stock: false,
            allow_gift_card_overdraw: false,
            allow_credit_over_limit: false,
            loyalty_points_per_unit: 1,
            loyalty_point_value_minor: 1,
            layaway_min_deposit_ppm: 100_000,
            layaway_cancellation_fee_ppm: 0,
            tax_labour: false,
            allow_refund_to_any_tender: false,
        }
    }
}

impl TenantSettings {
    /// Defaults for a new tenant: US dollars, `en-US`, no taxes.
    pub fn new(brand_name: &str) -> Self {
        Self {
            brand_name: brand_name.to_owned(),
            domain: None,
            currency: "USD".to_owned(),
            locale: "en-US".to_owned(),
            time_zone: None,
            tax_rates: Vec::new(),
            receipt_header: String::new(),
            receipt_footer: String::new(),
            features: BTreeMap::new(),
            rules: BusinessRules::default(),
        }
    }

    /// Checks every field; the first problem found is returned. A feature switch must be one
    /// of [`Feature::ALL`].
    ///
    /// ```
    /// use pos_tenancy::{Feature, SettingsError, TenantSettings};
    /// let mut s = TenantSettings::new("Caps Automotive");
    /// s.set_feature(Feature::GiftCards, false);
    /// assert!(s.validate().is_ok());
    /// s.features.insert("giftcards".into(), false);
    /// let err = s.validate().unwrap_err();
    /// assert!(matches!(err, SettingsError::UnknownFeature { ref name, .. } if name == "giftcards"));
    /// assert!(err.to_string().contains("gift_cards"));
    /// ```
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.validate_stored()?;
        // Not in validate_stored: a zone a newer tz database named must not make a stored
        // tenant unreadable on a terminal with older data (its receipts fall back to UTC).
        if let Some(zone) = &self.time_zone {
            if jiff::tz::TimeZone::get(zone).is_err() {
                return Err(SettingsError::TimeZone(zone.clone()));
            }
        }
        for name in self.features.keys() {
            if name.parse::<Feature>().is_err() {
                return Err(SettingsError::UnknownFeature {
                    name: name.clone(),
                    known: Feature::WORDS,
                });
            }
        }
        Ok(())
    }

    /// [`Self::validate`] less the names of feature switches: what settings read back from a
    /// store must pass. Settings stored before the list of switches was closed may name
    /// others; a tenant must stay readable, and nothing reads those names.
    pub(crate) fn validate_stored(&self) -> Result<(), SettingsError> {
        let len = self.brand_name.trim().chars().count();
        if len == 0 || self.brand_name.chars().count() > 100 {
            return Err(SettingsError::BrandName {
                len: self.brand_name.chars().count(),
            });
        }
        if !is_iso4217(&self.currency) {
            return Err(SettingsError::Currency(self.currency.clone()));
        }
        if !is_language_tag(&self.locale) {
            return Err(SettingsError::Locale(self.locale.clone()));
        }
        let mut names = std::collections::BTreeSet::new();
        for rate in &self.tax_rates {
            let fail = |reason| SettingsError::TaxRate {
                name: rate.name.clone(),
                reason,
            };
            if rate.name.trim().is_empty() {
                return Err(fail("the name is empty"));
            }
            if rate.rate_ppm > 1_000_000 {
                return Err(fail("the rate is above 100 % (1,000,000 ppm)"));
            }
            if !names.insert(rate.name.as_str()) {
                return Err(fail("the name appears twice"));
            }
        }
        match &self.domain {
            Some(Domain::Subdomain(s)) if !is_dns_label(s) => {
                return Err(SettingsError::Domain {
                    what: "subdomain",
                    value: s.clone(),
                })
            }
            Some(Domain::Custom(s)) if !is_dns_name(s) => {
                return Err(SettingsError::Domain {
                    what: "custom domain",
                    value: s.clone(),
                })
            }
            _ => {}
        }
        for (which, text) in [
            ("header", &self.receipt_header),
            ("footer", &self.receipt_footer),
        ] {
            let len = text.chars().count();
            if len > 1000 {
                return Err(SettingsError::ReceiptText { which, len });
            }
        }
        if self.rules.loyalty_point_value_minor == 0 {
            // A point worth nothing would let points be spent or refunded without moving money.
            return Err(SettingsError::Rule {
                name: "loyalty_point_value_minor",
                reason: "a point must be worth at least 1 minor unit",
            });
        }
        for (name, ppm) in [
            (
                "layaway_min_deposit_ppm",
                self.rules.layaway_min_deposit_ppm,
            ),
            (
                "layaway_cancellation_fee_ppm",
                self.rules.layaway_cancellation_fee_ppm,
            ),
        ] {
            if ppm > 1_000_000 {
                return Err(SettingsError::Rule {
                    name,
                    reason: "above 100 % (1,000,000 ppm)",
                });
            }
        }
        Ok(())
    }

    /// Parses and validates settings from JSON.
    pub fn from_json(text: &str) -> Result<Self, SettingsError> {
        let s: Self =
            serde_json::from_str(text).map_err(|e| SettingsError::Malformed(e.to_string()))?;
        s.validate()?;
        Ok(s)
    }

    /// Whether a feature switch is on: as the settings set it, else its default
    /// ([`Feature::default_on`]).
    ///
    /// ```
    /// use pos_tenancy::{Feature, TenantSettings};
    /// let mut s = TenantSettings::new("Caps Automotive");
    /// assert!(s.feature(Feature::Layaways));
    /// s.set_feature(Feature::Layaways, false);
    /// assert!(!s.feature(Feature::Layaways));
    /// assert_eq!(serde_json::to_value(&s.features)?, serde_json::json!({"layaways": false}));
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn feature(&self, feature: Feature) -> bool {
        self.features
            .get(feature.as_str())
            .copied()
            .unwrap_or_else(|| feature.default_on())
    }

    /// Switches a feature on or off.
    pub fn set_feature(&mut self, feature: Feature, on: bool) {
        self.features.insert(feature.as_str().to_owned(), on);
    }

    /// What a sale made now keeps of these settings for its receipt ([`ReceiptBrand`]).
    pub fn receipt_brand(&self) -> ReceiptBrand {
        ReceiptBrand {
            brand_name: self.brand_name.clone(),
            receipt_header: self.receipt_header.clone(),
            receipt_footer: self.receipt_footer.clone(),
            locale: self.locale.clone(),
            tax_rates: self.tax_rates.clone(),
            time_zone: self.time_zone.clone(),
        }
    }

    /// Parses settings read back from a store, checked as [`Self::validate_stored`] does.
    fn from_stored_json(text: &str) -> Result<Self, SettingsError> {
        let s: Self =
            serde_json::from_str(text).map_err(|e| SettingsError::Malformed(e.to_string()))?;
        s.validate_stored()?;
        Ok(s)
    }
}

fn is_language_tag(s: &str) -> bool {
    let mut parts = s.split('-');
    let lang = parts.next().unwrap_or("");
    let lang_ok = (2..=3).contains(&lang.len()) && lang.chars().all(|c| c.is_ascii_lowercase());
    lang_ok
        && parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_dns_name(s: &str) -> bool {
    s.len() <= 253 && s.contains('.') && s.split('.').all(is_dns_label)
}

/// ISO 4217 active currency codes (2024 list).
const ISO_4217: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD",
    "CAD", "CDF", "CHE", "CHF", "CHW", "CLF", "CLP", "CNY", "COP", "COU", "CRC", "CUP", "CVE",
    "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL",
    "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR",
    "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD",
    "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK",
    "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN", "NIO",
    "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON",
    "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD",
    "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD",
    "TZS", "UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS", "VED", "VES", "VND", "VUV",
    "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
];

/// Whether `code` is an active ISO 4217 currency code.
pub fn is_iso4217(code: &str) -> bool {
    ISO_4217.binary_search(&code).is_ok()
}

/// A tenant as the registry holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantInfo {
    /// The slug.
    pub id: TenantId,
    /// Legal or trading name.
    pub name: String,
    /// Active, suspended or cancelled.
    pub status: TenantStatus,
    /// The commercial plan.
    pub plan: Plan,
    /// The limits in force (the plan's defaults unless changed).
    pub limits: PlanLimits,
    /// Shared or dedicated storage.
    pub tier: Tier,
    /// White-label and business settings.
    pub settings: TenantSettings,
    /// When it was registered.
    pub created_at: Timestamp,
    /// When the registry row last changed.
    pub updated_at: Timestamp,
}

/// What is needed to register a tenant.
///
/// ```
/// use pos_tenancy::{NewTenant, Plan};
/// let t = NewTenant::new("caps-automotive".parse()?, "Caps Automotive").plan(Plan::Pro);
/// assert_eq!(t.settings.brand_name, "Caps Automotive");
/// # Ok::<(), pos_tenancy::TenantIdError>(())
/// ```
#[derive(Debug, Clone)]
pub struct NewTenant {
    /// The slug.
    pub id: TenantId,
    /// Legal or trading name.
    pub name: String,
    /// The plan; default free.
    pub plan: Plan,
    /// Default shared.
    pub tier: Tier,
    /// Default: [`TenantSettings::new`] with the tenant's name as brand.
    pub settings: TenantSettings,
}

impl NewTenant {
    /// A free, shared tenant branded with its own name.
    pub fn new(id: TenantId, name: &str) -> Self {
        Self {
            id,
            name: name.to_owned(),
            plan: Plan::Free,
            tier: Tier::Shared,
            settings: TenantSettings::new(name),
        }
    }

    /// Sets the plan.
    pub fn plan(mut self, plan: Plan) -> Self {
        self.plan = plan;
        self
    }

    /// Sets the settings.
    pub fn settings(mut self, settings: TenantSettings) -> Self {
        self.settings = settings;
        self
    }
}

/// Settings are stored as JSON text and validated again when read, all but the names of
/// feature switches (see [`TenantSettings::features`]).
impl FromSql for TenantSettings {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        TenantSettings::from_stored_json(value.as_str()?)
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_list_is_sorted_for_binary_search() {
        assert!(ISO_4217.windows(2).all(|w| w[0] < w[1]));
        assert!(is_iso4217("EUR") && is_iso4217("USD") && !is_iso4217("usd") && !is_iso4217("ABC"));
    }

    #[test]
    fn settings_validation_names_the_bad_field() {
        let ok = TenantSettings::new("Caps");
        assert_eq!(ok.validate(), Ok(()));
        let mut s = ok.clone();
        s.tax_rates.push(TaxRate {
            name: "VAT".into(),
            rate_ppm: 1_000_001,
        });
        assert!(matches!(s.validate(), Err(SettingsError::TaxRate { .. })));
        let mut s = ok.clone();
        s.locale = "english".into();
        assert!(matches!(s.validate(), Err(SettingsError::Locale(_))));
        let mut s = ok.clone();
        s.domain = Some(Domain::Subdomain("Caps Auto".into()));
        assert!(matches!(s.validate(), Err(SettingsError::Domain { .. })));
        let mut s = ok.clone();
        s.domain = Some(Domain::Custom("pos.capsautomotive.com".into()));
        assert_eq!(s.validate(), Ok(()));
        let mut s = ok;
        s.brand_name = "  ".into();
        assert!(matches!(s.validate(), Err(SettingsError::BrandName { .. })));
        assert!(matches!(
            TenantSettings::from_json("{"),
            Err(SettingsError::Malformed(_))
        ));
    }

    #[test]
    fn roles_are_ordered_by_power() {
        assert!(Role::Admin > Role::Manager && Role::Manager > Role::Cashier);
        assert_eq!("manager".parse::<Role>().unwrap(), Role::Manager);
        assert!("owner".parse::<Role>().is_err());
    }
}
