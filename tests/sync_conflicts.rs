//! Conflicts as a person meets them: listed on every terminal, resolved on one, shown resolved
//! on all after a sync; and every way a resolution is refused, with nothing written. In
//! process, terminals on real SQLite files, the central store behind the direct transport.

mod common;

use std::sync::Arc;

use common::{product, tid};
use pos_tenancy::catalog::{SyncConflict, User};
use pos_tenancy::pos::{Checkout, LineItem, Pos, Tender};
use pos_tenancy::sync::{ConflictError, DirectTransport, SyncOptions, Syncer};
use pos_tenancy::{
    Actor, CentralStore, Error, NewTenant, Plan, Role, RowId, SqliteCentral, Store, TenantAccess,
    TenantId, Timestamp,
};

type R = Result<(), Box<dyn std::error::Error>>;

/// A central store and two terminals of one tenant, each on its own file.
struct World {
    _dir: tempfile::TempDir,
    central: Arc<SqliteCentral>,
    transport: DirectTransport<SqliteCentral>,
    terminals: Vec<Store>,
    tenant: TenantId,
    options: SyncOptions,
}

impl World {
    fn new() -> Result<Self, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let central = Arc::new(SqliteCentral::open_in_memory()?);
        let tenant = tid("caps");
        let new = NewTenant::new(tenant.clone(), "Caps Automotive").plan(Plan::Pro);
        central.add_tenant(&new)?;
        let mut terminals = Vec::new();
        for i in 0..2 {
            let store = Store::open(dir.path().join(format!("t{i}.db")))?;
            store.add_tenant(&new)?;
            terminals.push(store);
        }
        Ok(Self {
            _dir: dir,
            transport: DirectTransport::new(Arc::clone(&central)),
            central,
            terminals,
            tenant,
            options: SyncOptions::default(),
        })
    }

    fn sync(&self, i: usize) -> R {
        Syncer::new(&self.terminals[i], &self.transport, &self.options)
            .round(&self.tenant, "token")?;
        Ok(())
    }

    /// Both terminals in turn until neither has anything to push and both hold the whole log.
    fn sync_all(&self) -> R {
        for _ in 0..10 {
            for i in 0..self.terminals.len() {
                self.sync(i)?;
            }
            let head = self.central.operations_after(&self.tenant, 0, 1)?.high;
            let quiet = self.terminals.iter().all(|s| {
                s.sync_status(&self.tenant)
                    .is_ok_and(|st| st.pending == 0 && st.cursor == head)
            });
            if quiet {
                return Ok(());
            }
        }
        Err("terminals did not settle within ten turns".into())
    }

    fn actor(&self, i: usize, user: RowId) -> Result<Actor, Box<dyn std::error::Error>> {
        Ok(self.terminals[i].tenant(&self.tenant)?.actor(user)?)
    }

    fn conflicts(
        &self,
        i: usize,
        open_only: bool,
    ) -> Result<Vec<SyncConflict>, Box<dyn std::error::Error>> {
        Ok(self.terminals[i]
            .tenant(&self.tenant)?
            .conflicts(open_only)?)
    }

    fn pending(&self, i: usize) -> Result<u64, Box<dyn std::error::Error>> {
        Ok(self.terminals[i].sync_status(&self.tenant)?.pending)
    }

    /// The admin made on terminal 0, and one negative-stock conflict on both terminals (each
    /// sold the last unit offline), everything synced.
    fn with_a_conflict(&self) -> Result<(Actor, RowId), Box<dyn std::error::Error>> {
        let a = self.terminals[0].tenant(&self.tenant)?;
        let admin = a.bootstrap_admin("owner", "Owner")?;
        let oil = product("OF-1", 1299);
        a.insert(&admin, &oil)?;
        a.receive_stock(&admin, oil.id, "main", 1_000, None)?;
        self.sync_all()?;
        let b = self.terminals[1].tenant(&self.tenant)?;
        let sale = |qty| {
            Checkout::new()
                .line(LineItem::product(oil.id, qty))
                .tender(Tender::Cash {
                    tendered_minor: 1_000_000,
                })
        };
        a.checkout(&admin, &sale(1_000))?;
        b.checkout(&self.actor(1, admin.user_id())?, &sale(1_000))?;
        self.sync_all()?;
        let open = self.conflicts(0, true)?;
        assert_eq!(open.len(), 1, "{open:?}");
        assert_eq!(open[0].kind, "negative_stock");
        assert_eq!(self.conflicts(1, true)?.len(), 1);
        Ok((admin, open[0].id))
    }
}

#[test]
fn a_resolution_made_on_one_terminal_shows_resolved_on_the_other_after_a_sync() -> R {
    let w = World::new()?;
    let (admin, id) = w.with_a_conflict()?;
    let b = w.terminals[1].tenant(&w.tenant)?;
    let before = w.pending(1)?;
    let resolved = b.resolve_conflict(
        &w.actor(1, admin.user_id())?,
        id,
        "  counted the shelf: one unit was there after all  ",
    )?;
    assert_eq!(
        resolved.resolution.as_deref(),
        Some("counted the shelf: one unit was there after all")
    );
    assert_eq!(resolved.resolved_by, Some(admin.user_id()));
    assert!(resolved.resolved_at.is_some());
    // One operation, waiting to be pushed like any other change.
    assert_eq!(w.pending(1)?, before + 1);
    assert!(w.conflicts(1, true)?.is_empty());
    // Terminal 0 has not heard of it yet.
    assert_eq!(w.conflicts(0, true)?.len(), 1);
    assert_eq!(w.terminals[0].sync_status(&w.tenant)?.open_conflicts, 1);

    w.sync_all()?;
    for i in 0..2 {
        assert!(w.conflicts(i, true)?.is_empty(), "terminal {i}");
        let all = w.conflicts(i, false)?;
        assert_eq!(all.len(), 1, "terminal {i}: {all:?}");
        assert_eq!(all[0].resolved_at, resolved.resolved_at, "terminal {i}");
        assert_eq!(all[0].resolved_by, resolved.resolved_by, "terminal {i}");
        assert_eq!(all[0].resolution, resolved.resolution, "terminal {i}");
        let status = w.terminals[i].sync_status(&w.tenant)?;
        assert_eq!(status.open_conflicts, 0, "terminal {i}");
        assert_eq!(status.pending, 0, "terminal {i}");
        assert!(w.terminals[i].verify()?.is_ok(), "terminal {i}");
    }
    // Resolving it again where it arrived by sync is refused too.
    let a = w.terminals[0].tenant(&w.tenant)?;
    match a.resolve_conflict(&admin, id, "again") {
        Err(Error::Conflict(ConflictError::AlreadyResolved { id: got, by, .. })) => {
            assert_eq!(got, id);
            assert_eq!(by, Some(admin.user_id()));
        }
        other => panic!("expected AlreadyResolved, got {other:?}"),
    }
    Ok(())
}

#[test]
fn refused_resolutions_name_their_reason_and_write_nothing() -> R {
    let w = World::new()?;
    let (admin, id) = w.with_a_conflict()?;
    let a = w.terminals[0].tenant(&w.tenant)?;
    let now = Timestamp::now();
    let cashier = User {
        id: RowId::new(),
        username: "till".into(),
        display_name: "Till".into(),
        email: None,
        role: Role::Cashier,
        pin_hash: None,
        active: true,
        created_at: now,
        updated_at: now,
    };
    a.insert(&admin, &cashier)?;
    let cashier = a.actor(cashier.id)?;
    let pending = w.pending(0)?;

    match a.resolve_conflict(&admin, RowId::new(), "nothing there") {
        Err(Error::NotFound { table, .. }) => assert_eq!(table, "sync_conflicts"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    for note in [String::new(), "   ".into(), "x".repeat(1001)] {
        match a.resolve_conflict(&admin, id, &note) {
            Err(Error::Conflict(ConflictError::BadResolution { max, .. })) => {
                assert_eq!(max, pos_tenancy::sync::MAX_RESOLUTION_CHARS)
            }
            other => panic!("expected BadResolution for {note:?}, got {other:?}"),
        }
    }
    match a.resolve_conflict(&cashier, id, "a cashier may not") {
        Err(Error::PermissionDenied { needed, .. }) => assert_eq!(needed, Role::Manager),
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
    assert_eq!(w.pending(0)?, pending, "a refusal wrote an operation");
    assert_eq!(w.conflicts(0, true)?.len(), 1);

    // The longest note allowed goes in; then the conflict is closed.
    let note = "y".repeat(pos_tenancy::sync::MAX_RESOLUTION_CHARS);
    a.resolve_conflict(&admin, id, &note)?;
    match a.resolve_conflict(&admin, id, "twice") {
        Err(Error::Conflict(e @ ConflictError::AlreadyResolved { .. })) => {
            assert!(e.to_string().contains(&id.to_string()), "{e}");
        }
        other => panic!("expected AlreadyResolved, got {other:?}"),
    }
    assert_eq!(w.pending(0)?, pending + 1);
    Ok(())
}

#[test]
fn two_terminals_resolving_the_same_conflict_offline_end_with_the_same_resolution() -> R {
    let w = World::new()?;
    let (admin, id) = w.with_a_conflict()?;
    let a = w.terminals[0].tenant(&w.tenant)?;
    let b = w.terminals[1].tenant(&w.tenant)?;
    a.resolve_conflict(&admin, id, "written off")?;
    std::thread::sleep(std::time::Duration::from_millis(5));
    let later = b.resolve_conflict(&w.actor(1, admin.user_id())?, id, "found it in the back")?;
    w.sync_all()?;
    // The later resolution stands everywhere, column by column like any master data.
    let mut seen = Vec::new();
    for i in 0..2 {
        let all = w.conflicts(i, false)?;
        let row = all
            .iter()
            .find(|c| c.id == id)
            .ok_or("the conflict is gone")?;
        assert_eq!(row.resolution, later.resolution, "terminal {i}");
        assert_eq!(row.resolved_at, later.resolved_at, "terminal {i}");
        // Two resolutions of one conflict are not a conflict of their own.
        assert!(
            all.iter().all(|c| c.table_name != "sync_conflicts"),
            "terminal {i}: {all:?}"
        );
        let mut ids: Vec<(RowId, String, bool)> = all
            .iter()
            .map(|c| (c.id, c.kind.clone(), c.resolved_at.is_some()))
            .collect();
        ids.sort();
        seen.push(ids);
    }
    assert_eq!(seen[0], seen[1], "the terminals hold different conflicts");
    Ok(())
}
