//! Hybrid logical clock: stamps that follow wall-clock time when it moves forward and never go
//! backwards when it does not (a clock set back, a restart, a stamp from another terminal).
//!
//! A stamp is (milliseconds, counter, node). Its text form, `0001732433333123.000001@<node>`,
//! has fixed-width numbers so text order is stamp order, with the node id breaking ties. The
//! outbox stores its own node's stamps without the node (the row names it already).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ids::RowId;

/// Why a stamp was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HlcError {
    /// Not of the form `MMMMMMMMMMMMMMMM.CCCCCC@node-uuid`.
    #[error("malformed clock stamp {0:?}")]
    Malformed(String),
    /// A remote stamp further ahead of our wall clock than the allowed skew: taking it would
    /// drag every later local stamp into the future.
    #[error("clock stamp is {ahead_ms} ms ahead of this node's clock; at most {max_skew_ms} ms is accepted")]
    TooFarAhead {
        /// How far ahead it was.
        ahead_ms: u64,
        /// The configured bound.
        max_skew_ms: u64,
    },
    /// The counter would overflow within one millisecond.
    #[error("clock counter exhausted within one millisecond")]
    CounterOverflow,
    /// A wall-clock reading with more than 16 digits of milliseconds: the clock is broken.
    #[error("clock reading {0} ms is out of range")]
    OutOfRange(u64),
}

/// The largest counter value; more events than this in one millisecond wait for the next.
pub const MAX_COUNTER: u32 = 999_999;

/// The largest wall-clock part a stamp may have: 16 digits, so the text form keeps its width
/// (and its order). A clock reading beyond it is refused, never stored.
pub const MAX_MILLIS: u64 = 9_999_999_999_999_999;

/// How far ahead of the local wall clock a remote stamp may be, unless configured otherwise.
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(300);

/// One stamp of the hybrid logical clock.
///
/// ```
/// use pos_tenancy::Hlc;
/// let a: Hlc = "0001732433333123.000001@01937a5e-7f4e-7c2a-9a4b-1f2e3d4c5b6a".parse()?;
/// assert_eq!(a.millis(), 1_732_433_333_123);
/// assert_eq!(a.to_string().parse::<Hlc>()?, a);
/// # Ok::<(), pos_tenancy::HlcError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hlc {
    millis: u64,
    counter: u32,
    node: RowId,
}

impl Hlc {
    /// A stamp from its parts.
    pub fn new(millis: u64, counter: u32, node: RowId) -> Result<Self, HlcError> {
        if counter > MAX_COUNTER {
            return Err(HlcError::CounterOverflow);
        }
        if millis > MAX_MILLIS {
            return Err(HlcError::OutOfRange(millis));
        }
        Ok(Self {
            millis,
            counter,
            node,
        })
    }
    /// Wall-clock part, in milliseconds since the Unix epoch.
    pub fn millis(&self) -> u64 {
        self.millis
    }
    /// Logical part: events within the same millisecond.
    pub fn counter(&self) -> u32 {
        self.counter
    }
    /// The node that made the stamp.
    pub fn node(&self) -> RowId {
        self.node
    }

    /// The clock part alone, `MMMMMMMMMMMMMMMM.CCCCCC`: the outbox's stored form of a stamp its
    /// own node made (the row names the node anyway). Text order is still clock order.
    #[cfg(test)]
    pub(crate) fn clock_text(&self) -> String {
        ClockState {
            millis: self.millis,
            counter: self.counter,
        }
        .stored_text()
        .into()
    }

    /// A stamp read back from the outbox: a clock part made by `node`, or a whole stamp, which
    /// is kept as it is (a row copied in by adoption may carry another node's).
    pub(crate) fn from_stored(text: &str, node: RowId) -> Result<Self, HlcError> {
        if text.contains('@') {
            return text.parse();
        }
        let state = ClockState::from_stored(text)?;
        Hlc::new(state.millis, state.counter, node)
    }
}

/// The clock's state: the last (millis, counter) this node has issued or seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct ClockState {
    /// Milliseconds.
    pub millis: u64,
    /// Counter.
    pub counter: u32,
}

impl ClockState {
    /// The clock part of a stored stamp, with or without its node (see [`ClockState::stored_text`]).
    pub(crate) fn from_stored(text: &str) -> Result<Self, HlcError> {
        let clock = text.split_once('@').map_or(text, |(clock, _)| clock);
        parse_clock(clock).ok_or_else(|| HlcError::Malformed(text.to_owned()))
    }

    /// The stored form `MMMMMMMMMMMMMMMM.CCCCCC`, written digit by digit: it is made on every
    /// write, and `format!` with padding cost more than the rest of stamping. Values beyond
    /// [`MAX_MILLIS`] or [`MAX_COUNTER`] (which no [`Hlc`] holds) keep their low digits.
    pub(crate) fn stored_text(&self) -> ClockText {
        let mut text = [b'.'; 23];
        put_digits(&mut text[..16], self.millis);
        put_digits(&mut text[17..], u64::from(self.counter));
        ClockText(text)
    }

    /// The next local stamp at wall time `now`: strictly after everything issued or seen.
    pub fn tick(self, now: u64) -> Result<ClockState, HlcError> {
        if now > MAX_MILLIS {
            return Err(HlcError::OutOfRange(now));
        }
        if now > self.millis {
            Ok(ClockState {
                millis: now,
                counter: 0,
            })
        } else if self.counter < MAX_COUNTER {
            Ok(ClockState {
                millis: self.millis,
                counter: self.counter + 1,
            })
        } else if self.millis < MAX_MILLIS {
            // Borrow the next millisecond rather than fail: still monotonic, still unique.
            Ok(ClockState {
                millis: self.millis + 1,
                counter: 0,
            })
        } else {
            Err(HlcError::CounterOverflow)
        }
    }

    /// Takes in a remote stamp: the state moves past it (and past `now`), unless the remote
    /// stamp is more than `max_skew` ahead of `now`, which is refused and changes nothing.
    pub fn observe(
        self,
        remote: &Hlc,
        now: u64,
        max_skew: Duration,
    ) -> Result<ClockState, HlcError> {
        let max_skew_ms = u64::try_from(max_skew.as_millis()).unwrap_or(u64::MAX);
        if remote.millis > now.saturating_add(max_skew_ms) {
            return Err(HlcError::TooFarAhead {
                ahead_ms: remote.millis - now,
                max_skew_ms,
            });
        }
        let seen = ClockState {
            millis: remote.millis,
            counter: remote.counter,
        }
        .max(self);
        if now > seen.millis {
            Ok(ClockState {
                millis: now,
                counter: 0,
            })
        } else {
            Ok(seen)
        }
    }
}

/// A stamp's stored text, on the stack (see [`ClockState::stored_text`]); binds as SQL text.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClockText([u8; 23]);

impl ClockText {
    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII digits and a dot are ever written, so this never falls back.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl From<ClockText> for String {
    fn from(t: ClockText) -> String {
        t.as_str().to_owned()
    }
}

impl rusqlite::ToSql for ClockText {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::Borrowed(
            rusqlite::types::ValueRef::Text(&self.0),
        ))
    }
}

/// Writes the low `out.len()` decimal digits of `value`, zero-padded.
fn put_digits(out: &mut [u8], mut value: u64) {
    for digit in out.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016}.{:06}@{}", self.millis, self.counter, self.node)
    }
}

/// `MMMMMMMMMMMMMMMM.CCCCCC`, exactly those widths and only digits.
fn parse_clock(clock: &str) -> Option<ClockState> {
    let (millis, counter) = clock.split_once('.')?;
    if millis.len() != 16 || counter.len() != 6 {
        return None;
    }
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(millis) || !all_digits(counter) {
        return None;
    }
    Some(ClockState {
        millis: millis.parse().ok()?,
        counter: counter.parse().ok()?,
    })
}

impl FromStr for Hlc {
    type Err = HlcError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || HlcError::Malformed(s.to_owned());
        let (clock, node) = s.split_once('@').ok_or_else(bad)?;
        let clock = parse_clock(clock).ok_or_else(bad)?;
        Ok(Self {
            millis: clock.millis,
            counter: clock.counter,
            node: node.parse().map_err(|_| bad())?,
        })
    }
}

/// The stamp as the OpenAPI document describes it (feature `server`): its text form, as serde
/// writes it. By hand, because a derive would describe the fields, which never travel.
#[cfg(feature = "server")]
impl utoipa::PartialSchema for Hlc {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "A hybrid logical clock stamp: 16 digits of milliseconds since the Unix epoch, \
                 '.', a 6-digit counter, '@', the node's id; text order is clock order",
            ))
            .pattern(Some(r"^[0-9]{16}\.[0-9]{6}@[0-9a-f-]{36}$"))
            .examples(["0001732433333123.000001@01937a5e-7f4e-7c2a-9a4b-1f2e3d4c5b6a"])
            .into()
    }
}

#[cfg(feature = "server")]
impl utoipa::ToSchema for Hlc {}

impl Serialize for Hlc {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Hlc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn text_form_sorts_like_the_stamp() {
        let node = RowId::new();
        let a = Hlc::new(9, 999_999, node).unwrap();
        let b = Hlc::new(10, 0, node).unwrap();
        assert!(a < b && a.to_string() < b.to_string());
        assert!("12.3@x".parse::<Hlc>().is_err());
        assert!(format!("{:016}.{:06}@nope", 1, 1).parse::<Hlc>().is_err());
    }

    #[test]
    fn the_stored_form_drops_only_the_node() {
        let node = RowId::new();
        let a = Hlc::new(1_732_433_333_123, 42, node).unwrap();
        assert_eq!(a.clock_text(), "0001732433333123.000042");
        assert_eq!(Hlc::from_stored(&a.clock_text(), node), Ok(a));
        // A whole stamp keeps its own node.
        let other = Hlc::new(5, 0, RowId::new()).unwrap();
        assert_eq!(Hlc::from_stored(&other.to_string(), node), Ok(other));
        assert_eq!(
            ClockState::from_stored(&other.to_string()),
            Ok(ClockState {
                millis: 5,
                counter: 0
            })
        );
        let b = Hlc::new(10, 0, node).unwrap();
        let c = Hlc::new(9, 999_999, node).unwrap();
        assert!(c.clock_text() < b.clock_text());
        let widest = Hlc::new(MAX_MILLIS, MAX_COUNTER, node).unwrap();
        assert_eq!(widest.clock_text(), "9999999999999999.999999");
        assert_eq!(
            Hlc::new(0, 0, node).unwrap().clock_text(),
            "0000000000000000.000000"
        );
        for bad in [
            "",
            "12.3",
            "0001732433333123.00004",
            "000173243333312x.000042",
        ] {
            assert!(ClockState::from_stored(bad).is_err(), "{bad}");
            assert!(Hlc::from_stored(bad, node).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_clock_set_back_does_not_move_stamps_back() {
        let s = ClockState::default().tick(1_000).unwrap();
        let t = s.tick(500).unwrap();
        assert!(t > s);
        assert_eq!(
            t,
            ClockState {
                millis: 1_000,
                counter: 1
            }
        );
    }

    #[test]
    fn remote_stamps_from_the_future_are_bounded() {
        let node = RowId::new();
        let skew = Duration::from_secs(60);
        let near = Hlc::new(1_000 + 30_000, 4, node).unwrap();
        let s = ClockState {
            millis: 1_000,
            counter: 0,
        }
        .observe(&near, 1_000, skew)
        .unwrap();
        assert_eq!(
            s,
            ClockState {
                millis: 31_000,
                counter: 4
            }
        );
        let far = Hlc::new(1_000 + 61_000, 0, node).unwrap();
        assert_eq!(
            ClockState::default().observe(&far, 1_000, skew),
            Err(HlcError::TooFarAhead {
                ahead_ms: 61_000,
                max_skew_ms: 60_000
            })
        );
    }

    proptest! {
        #[test]
        fn the_stored_text_is_the_padded_numbers(millis in 0..=MAX_MILLIS, counter in 0..=MAX_COUNTER) {
            let state = ClockState { millis, counter };
            let text = state.stored_text();
            prop_assert_eq!(text.as_str(), format!("{millis:016}.{counter:06}"));
            prop_assert_eq!(ClockState::from_stored(state.stored_text().as_str()), Ok(state));
        }

        #[test]
        fn stamps_never_go_backwards(events in prop::collection::vec((0u64..5_000, any::<bool>(), 0u64..6_000, 0u32..3), 1..200)) {
            let node = RowId::new();
            let mut state = ClockState::default();
            let mut last_issued: Option<ClockState> = None;
            for (now, remote, remote_ms, remote_counter) in events {
                if remote {
                    let r = Hlc::new(remote_ms, remote_counter, node).unwrap();
                    if let Ok(next) = state.observe(&r, now, Duration::from_millis(1_000)) {
                        prop_assert!(next >= state);
                        state = next;
                    }
                } else {
                    let next = state.tick(now).unwrap();
                    prop_assert!(next > state);
                    if let Some(last) = last_issued { prop_assert!(next > last); }
                    last_issued = Some(next);
                    state = next;
                }
            }
        }
    }
}
