//! The node's clock as the file keeps it: the floor in `node_state` (observed remote stamps,
//! pruned operations) and each tenant's newest pending operation, with an in-memory copy of the
//! newest stamps that a store trusts while no other connection has committed; and the
//! [`Store`]'s clock methods built on them.
//!
//! Invariant: a stamp this node issues follows every stamp it issued or observed before, on
//! this connection or any other on the same file, whatever the wall clock says.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension};

use super::Store;
use crate::error::Error;
use crate::hlc::{ClockState, Hlc};
use crate::ids::{TenantId, Timestamp};
use crate::Result;

/// Milliseconds since the Unix epoch by the system clock: a store's wall clock unless its
/// builder is given another ([`StoreBuilder::clock`](super::StoreBuilder::clock)).
pub(super) fn system_millis() -> u64 {
    u64::try_from(Timestamp::now().as_millis()).unwrap_or(0)
}

impl Store {
    /// The last stamp this node issued or observed.
    pub fn clock(&self) -> Result<Hlc> {
        let state = clock_state(&self.conn)?;
        Hlc::new(state.millis, state.counter, self.node_id).map_err(Error::Clock)
    }

    /// Takes in a stamp from another node, so every later local stamp comes after it. A stamp
    /// further ahead than the allowed skew is refused ([`Error::Clock`]) and changes nothing.
    pub fn observe_clock(&self, remote: &Hlc) -> Result<Hlc> {
        let tx = self.begin_write()?;
        let next = clock_state(&tx)?
            .observe(remote, (self.clock)(), self.max_skew)
            .map_err(Error::Clock)?;
        tx.execute(
            "UPDATE node_state SET hlc_millis = ?1, hlc_counter = ?2 WHERE singleton = 1",
            rusqlite::params![i64::try_from(next.millis).unwrap_or(i64::MAX), next.counter],
        )?;
        // The floor rose on this connection, which PRAGMA data_version does not count.
        self.clock_cache.borrow_mut().clear();
        tx.commit()?;
        Hlc::new(next.millis, next.counter, self.node_id).map_err(Error::Clock)
    }

    /// Forgets the stamps this connection cached: the clock's floor was raised under them (a
    /// remote stamp observed by the merge).
    pub(crate) fn forget_cached_clock(&self) {
        self.clock_cache.borrow_mut().clear();
    }

    pub(crate) fn stamper(&self) -> crate::outbox::Stamper<'_> {
        crate::outbox::Stamper {
            node: self.node_id,
            node_text: &self.node_text,
            now_millis: &*self.clock,
            cache: &self.clock_cache,
        }
    }
}

/// The newest stamp of each tenant as one store's connection last saw or issued it, so that
/// stamping a write does not search the outbox's index every time.
///
/// The file is the truth; this is only a copy, trusted while `PRAGMA data_version` says no
/// other connection (another `Store`, another process) has committed since it was read. An
/// entry may be ahead of the file (its write was rolled back): the next stamp then skips a
/// value, which breaks nothing; it is never behind it. Writes of `node_state` or
/// `pending_operations` through the store's own connection other than [`append`] (which keeps
/// it up to date) must [`ClockCache::clear`] it.
#[derive(Debug, Default)]
pub(crate) struct ClockCache {
    /// `PRAGMA data_version` when the entries were read.
    pub(crate) data_version: Option<i64>,
    /// Per tenant: the larger of the clock floor and the tenant's newest stamp.
    pub(crate) newest: HashMap<TenantId, ClockState>,
    /// Counts the connection's commits and rollbacks (its hooks add one each), so the outbox
    /// can tell one transaction's operations from the next one's.
    pub(crate) txn_epoch: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// The epoch of the transaction being written and its id (its first operation's).
    pub(crate) txn: Option<(u64, crate::ids::RowId)>,
}

impl ClockCache {
    /// Forgets everything: the next stamp of each tenant reads the file.
    pub(crate) fn clear(&mut self) {
        self.data_version = None;
        self.newest.clear();
    }
}

/// The clock floor kept in `node_state` (observed remote stamps, pruned operations).
pub(crate) fn clock_floor(conn: &Connection) -> Result<ClockState> {
    let (millis, counter): (i64, i64) = conn
        .prepare_cached("SELECT hlc_millis, hlc_counter FROM node_state WHERE singleton = 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(ClockState {
        millis: u64::try_from(millis).unwrap_or(0),
        counter: u32::try_from(counter).unwrap_or(0),
    })
}

/// Raises the clock floor kept in `node_state` to `to` when it is below: the clock never goes
/// back, so a stamp issued afterwards follows `to` (what a restore or a move brought in).
pub(crate) fn raise_clock_floor(conn: &Connection, to: ClockState) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "UPDATE node_state SET hlc_millis = ?1, hlc_counter = ?2
         WHERE singleton = 1 AND (hlc_millis, hlc_counter) < (?1, ?2)",
    )?
    .execute(rusqlite::params![
        i64::try_from(to.millis).unwrap_or(i64::MAX),
        to.counter
    ])
}

/// The stamp of the tenant's newest operation still in the outbox.
fn last_stamp(conn: &Connection, tenant: &TenantId) -> Result<Option<ClockState>> {
    let last: Option<String> = conn
        .prepare_cached(
            "SELECT hlc FROM pending_operations WHERE tenant_id = ?1 ORDER BY hlc DESC LIMIT 1",
        )?
        .query_row([tenant], |r| r.get(0))
        .optional()?;
    last.map(|text| ClockState::from_stored(&text).map_err(Error::Clock))
        .transpose()
}

/// Everything the node's clock has issued or seen: the floor and every tenant's newest
/// pending operation.
pub(crate) fn clock_state(conn: &Connection) -> Result<ClockState> {
    let mut state = clock_floor(conn)?;
    let tenants: Vec<TenantId> = {
        let mut stmt = conn.prepare_cached("SELECT id FROM tenants")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for t in &tenants {
        state = state.max(last_stamp(conn, t)?.unwrap_or_default());
    }
    Ok(state)
}
