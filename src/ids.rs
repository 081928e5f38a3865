//! Validated identifiers and the scalar types every table shares: tenant slugs, row ids,
//! timestamps and JSON columns.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// Why a string is not a valid [`TenantId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TenantIdError {
    /// The slug was empty.
    #[error("tenant id is empty")]
    Empty,
    /// The slug was longer than [`TenantId::MAX_LEN`] characters.
    #[error("tenant id is {len} characters long; at most 64 are allowed")]
    TooLong {
        /// Length of the rejected slug.
        len: usize,
    },
    /// The slug contained a character other than `a-z`, `0-9` or `-`.
    #[error(
        "tenant id {id:?} contains {found:?}; only lowercase letters, digits and '-' are allowed"
    )]
    InvalidChar {
        /// The rejected slug.
        id: String,
        /// The first offending character.
        found: char,
    },
}

/// A tenant (one business) identified by a slug such as `caps-automotive`.
///
/// Only lowercase ASCII letters, digits and `-`, 1 to 64 characters. Construction validates, so a
/// `TenantId` that exists is safe to bind anywhere.
///
/// ```
/// use pos_tenancy::TenantId;
/// let id: TenantId = "caps-automotive".parse()?;
/// assert_eq!(id.as_str(), "caps-automotive");
/// assert!("Caps Automotive".parse::<TenantId>().is_err());
/// # Ok::<(), pos_tenancy::TenantIdError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(
    feature = "server",
    derive(utoipa::ToSchema),
    schema(
        description = "A tenant's slug: 1 to 64 of a-z, 0-9 and '-'",
        pattern = "^[a-z0-9-]{1,64}$",
        examples("caps-automotive")
    )
)]
pub struct TenantId(String);

impl TenantId {
    /// Longest slug accepted.
    pub const MAX_LEN: usize = 64;

    /// Validates `s` as a tenant slug.
    pub fn new(s: &str) -> Result<Self, TenantIdError> {
        if s.is_empty() {
            return Err(TenantIdError::Empty);
        }
        if s.len() > Self::MAX_LEN {
            return Err(TenantIdError::TooLong {
                len: s.chars().count(),
            });
        }
        if let Some(found) = s
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(TenantIdError::InvalidChar {
                id: s.to_owned(),
                found,
            });
        }
        Ok(Self(s.to_owned()))
    }

    /// The slug as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for TenantId {
    type Err = TenantIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for TenantId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TenantId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TenantId::new(&s).map_err(serde::de::Error::custom)
    }
}

impl ToSql for TenantId {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(self.0.as_bytes())))
    }
}

impl FromSql for TenantId {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        TenantId::new(value.as_str()?).map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

/// Why a string is not a valid [`RowId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("row id {value:?} is not a UUID")]
pub struct RowIdError {
    /// The rejected text.
    pub value: String,
}

/// The id of a row: a UUID, UUIDv7 when created here, so ids made by two offline terminals never
/// collide and sort by creation time.
///
/// ```
/// use pos_tenancy::RowId;
/// let a = RowId::new();
/// let b = RowId::new();
/// assert!(a < b, "v7 ids made later sort later");
/// assert!("not-a-uuid".parse::<RowId>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(
    feature = "server",
    derive(utoipa::ToSchema),
    schema(
        value_type = String,
        format = "uuid",
        description = "A UUID (v7 for rows and operations made on a node), lowercase, hyphenated"
    )
)]
pub struct RowId(Uuid);

impl RowId {
    /// A fresh UUIDv7.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// The underlying UUID.
    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }

    /// An id derived from `parts` alone (SHA-256, laid out as a UUID): every node that derives
    /// it from the same parts gets the same id, so two terminals recording the same sync
    /// conflict write one row.
    pub(crate) fn derived(parts: &[&str]) -> Self {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        for part in parts {
            // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        let digest = hasher.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Self(uuid::Builder::from_random_bytes(bytes).into_uuid())
    }
}

impl FromStr for RowId {
    type Err = RowIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::try_parse(s).map(Self).map_err(|_| RowIdError {
            value: s.to_owned(),
        })
    }
}

impl fmt::Display for RowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl Serialize for RowId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0.hyphenated())
    }
}

impl<'de> Deserialize<'de> for RowId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl ToSql for RowId {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        Ok(ToSqlOutput::from(
            self.0.hyphenated().encode_lower(&mut buf).to_owned(),
        ))
    }
}

impl FromSql for RowId {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value {
            ValueRef::Text(t) => Uuid::try_parse_ascii(t)
                .map(Self)
                .map_err(|e| FromSqlError::Other(Box::new(e))),
            _ => Err(FromSqlError::InvalidType),
        }
    }
}

/// A point in time, stored as RFC 3339 UTC text with milliseconds (`2026-11-24T05:41:06.123Z`),
/// a fixed width so that text order is time order in SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    /// The current time, truncated to milliseconds (what is stored).
    pub fn now() -> Self {
        let now = Utc::now();
        Self::from_millis(now.timestamp_millis()).unwrap_or(Self(now))
    }

    /// A timestamp from milliseconds since the Unix epoch; `None` when out of range.
    pub fn from_millis(ms: i64) -> Option<Self> {
        DateTime::from_timestamp_millis(ms).map(Self)
    }

    /// Milliseconds since the Unix epoch.
    pub fn as_millis(&self) -> i64 {
        self.0.timestamp_millis()
    }

    /// The chrono value.
    pub fn as_datetime(&self) -> DateTime<Utc> {
        self.0
    }

    /// The stored text form.
    pub fn to_rfc3339(&self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(d: DateTime<Utc>) -> Self {
        Self::from_millis(d.timestamp_millis()).unwrap_or(Self(d))
    }
}

impl FromStr for Timestamp {
    type Err = chrono::ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DateTime::parse_from_rfc3339(s).map(|d| Self::from(d.with_timezone(&Utc)))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl ToSql for Timestamp {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.to_rfc3339()))
    }
}

impl FromSql for Timestamp {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value
            .as_str()?
            .parse()
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

/// A JSON document stored in a TEXT column (always as JSON text, so `json_valid` holds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Json(pub serde_json::Value);

impl ToSql for Json {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        serde_json::to_string(&self.0)
            .map(ToSqlOutput::from)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
    }
}

impl FromSql for Json {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        serde_json::from_str(value.as_str()?)
            .map(Json)
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_slugs_are_validated() {
        assert!(TenantId::new("caps-automotive").is_ok());
        assert!(TenantId::new("a").is_ok());
        assert!(TenantId::new(&"a".repeat(64)).is_ok());
        assert_eq!(TenantId::new(""), Err(TenantIdError::Empty));
        assert_eq!(
            TenantId::new(&"a".repeat(65)),
            Err(TenantIdError::TooLong { len: 65 })
        );
        for bad in [
            "Caps",
            "a b",
            "a_b",
            "a'; DROP TABLE tenants; --",
            "é",
            "a.b",
        ] {
            assert!(
                matches!(TenantId::new(bad), Err(TenantIdError::InvalidChar { .. })),
                "{bad:?} must be refused"
            );
        }
    }

    #[test]
    fn timestamps_round_trip_as_fixed_width_text() {
        let t = Timestamp::from_millis(1_700_000_000_123).unwrap();
        assert_eq!(t.to_rfc3339(), "2023-11-14T22:13:20.123Z");
        assert_eq!(t.to_rfc3339().parse::<Timestamp>().unwrap(), t);
        let earlier = Timestamp::from_millis(999).unwrap();
        assert!(earlier.to_rfc3339() < t.to_rfc3339());
    }

    #[test]
    fn row_ids_parse_and_print_hyphenated() {
        let id = RowId::new();
        assert_eq!(id.to_string().parse::<RowId>().unwrap(), id);
        assert!("zzz".parse::<RowId>().is_err());
    }
}
