//! How a terminal applies a page of the log, through the public API: a unit that cannot be
//! applied is left out alone while the rest of its page applies, and a row delivered again
//! under another operation id is recognised, not written twice. The operations are injected
//! into the central log as a terminal that is not in the test would have pushed them.

mod common;

use std::sync::Arc;

use common::{customer, product, tid};
use pos_tenancy::catalog::{Customer, SyncConflict};
use pos_tenancy::pos::Pos;
use pos_tenancy::sync::{DirectTransport, SyncOptions, Syncer};
use pos_tenancy::{
    Actor, CentralStore, Hlc, ListQuery, NewTenant, Operation, OperationKind, RowId, SqliteCentral,
    Store, TenantAccess, TenantId,
};

type R = Result<(), Box<dyn std::error::Error>>;

struct Two {
    _dir: tempfile::TempDir,
    central: Arc<SqliteCentral>,
    transport: DirectTransport<SqliteCentral>,
    a: Store,
    b: Store,
    tenant: TenantId,
    admin: Actor,
}

impl Two {
    /// Terminals `a` and `b` of one tenant; `a` made the admin and both hold it.
    fn new() -> Result<Self, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let central = Arc::new(SqliteCentral::open_in_memory()?);
        let tenant = tid("caps");
        central.add_tenant(&NewTenant::new(tenant.clone(), "Caps"))?;
        let open = |name: &str| -> Result<Store, Box<dyn std::error::Error>> {
            let s = Store::open(dir.path().join(name))?;
            s.add_tenant(&NewTenant::new(tenant.clone(), "Caps"))?;
            Ok(s)
        };
        let (a, b) = (open("a.db")?, open("b.db")?);
        let admin = a.tenant(&tenant)?.bootstrap_admin("owner", "Owner")?;
        let two = Self {
            _dir: dir,
            transport: DirectTransport::new(Arc::clone(&central)),
            central,
            a,
            b,
            tenant,
            admin,
        };
        two.sync_a()?;
        two.pull_b()?;
        Ok(two)
    }

    fn sync_a(&self) -> R {
        let options = SyncOptions::default();
        Syncer::new(&self.a, &self.transport, &options).round(&self.tenant, "token")?;
        Ok(())
    }

    fn pull_b(&self) -> Result<pos_tenancy::sync::RoundReport, Box<dyn std::error::Error>> {
        let options = SyncOptions::default();
        Ok(Syncer::new(&self.b, &self.transport, &options).pull(&self.tenant, "token")?)
    }

    /// The logged operation that wrote `row`.
    fn logged(&self, row: RowId) -> Result<Operation, Box<dyn std::error::Error>> {
        let page = self.central.operations_after(&self.tenant, 0, 1000)?;
        page.operations
            .into_iter()
            .map(|s| s.operation)
            .find(|op| op.row_id == row)
            .ok_or_else(|| format!("no operation of row {row} in the log").into())
    }

    /// Appends operations to the log as one push of a terminal that is not in the test.
    fn inject(&self, ops: Vec<Operation>) -> R {
        let results = self.central.append(&self.tenant, &ops)?;
        assert_eq!(results.len(), ops.len());
        Ok(())
    }

    fn conflict_kinds(&self, store: &Store) -> Result<Vec<String>, Box<dyn std::error::Error>> {
        let t = store.tenant(&self.tenant)?;
        Ok(t.list::<SyncConflict>(&ListQuery::new().limit(100))?
            .rows
            .into_iter()
            .map(|c| c.kind)
            .collect())
    }
}

/// `op` again as another device's standalone operation with a new id, stamped now.
fn again(
    op: &Operation,
    device: RowId,
    counter: u32,
) -> Result<Operation, Box<dyn std::error::Error>> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as u64;
    Ok(Operation {
        id: RowId::new(),
        device_id: device,
        hlc: Hlc::new(now, counter, device)?,
        unit: None,
        base: None,
        ..op.clone()
    })
}

#[test]
fn a_unit_that_cannot_be_applied_is_left_out_alone_and_the_rest_of_its_page_applies() -> R {
    let two = Two::new()?;
    let a = two.a.tenant(&two.tenant)?;
    let first = customer("C-1", Some("c1@example.com"));
    a.insert(&two.admin, &first)?;
    two.sync_a()?;
    let template = two.logged(first.id)?;
    let device = RowId::new();
    // Before and after the bad unit, a new customer each; between them, a change of a
    // customer no terminal of this test ever had.
    let mut before = again(&template, device, 1)?;
    before.row_id = RowId::new();
    before.columns.insert("code".into(), "C-2".into());
    before
        .columns
        .insert("email".into(), "c2@example.com".into());
    let mut bad = again(&template, device, 2)?;
    bad.row_id = RowId::new();
    bad.kind = OperationKind::Update;
    bad.columns = serde_json::Map::new();
    bad.columns.insert("first_name".into(), "Zed".into());
    let mut after = again(&template, device, 3)?;
    after.row_id = RowId::new();
    after.columns.insert("code".into(), "C-3".into());
    after
        .columns
        .insert("email".into(), "c3@example.com".into());
    two.inject(vec![before.clone(), bad.clone(), after.clone()])?;

    let report = two.pull_b()?;
    let b = two.b.tenant(&two.tenant)?;
    for id in [first.id, before.row_id, after.row_id] {
        assert!(b.get::<Customer>(id)?.is_some(), "customer {id} applied");
    }
    assert!(b.get::<Customer>(bad.row_id)?.is_none());
    assert_eq!(two.conflict_kinds(&two.b)?, vec!["not_applied".to_owned()]);
    assert_eq!(report.conflicts.len(), 1, "recorded once: {report:?}");
    let status = two.b.sync_status(&two.tenant)?;
    assert_eq!(
        status.cursor, status.server_high,
        "the whole page is behind the cursor"
    );
    // Applying the page again changes nothing and records nothing new.
    let report = two.pull_b()?;
    assert!(report.conflicts.is_empty());
    assert_eq!(two.conflict_kinds(&two.b)?, vec!["not_applied".to_owned()]);
    Ok(())
}

#[test]
fn a_ledger_row_delivered_again_is_held_once_and_other_content_under_its_id_is_a_conflict() -> R {
    let two = Two::new()?;
    let a = two.a.tenant(&two.tenant)?;
    let oil = product("OF-1", 1299);
    a.insert(&two.admin, &oil)?;
    a.receive_stock(&two.admin, oil.id, "main", 5_000, None)?;
    two.sync_a()?;
    two.pull_b()?;
    let b = two.b.tenant(&two.tenant)?;
    assert_eq!(b.stock_on_hand(oil.id, "main")?, 5_000);
    let page = two.central.operations_after(&two.tenant, 0, 1000)?;
    let receipt = page
        .operations
        .iter()
        .map(|s| &s.operation)
        .find(|op| op.table == "inventory_transactions")
        .ok_or("the receipt is logged")?
        .clone();
    let device = RowId::new();

    // The same row under another operation id: held already, the balance unchanged.
    two.inject(vec![again(&receipt, device, 1)?])?;
    let report = two.pull_b()?;
    assert_eq!(report.applied, 1);
    assert!(report.conflicts.is_empty(), "{report:?}");
    assert_eq!(b.stock_on_hand(oil.id, "main")?, 5_000);

    // Other content under the row's id: a conflict, and the row here stays.
    let mut other = again(&receipt, device, 2)?;
    other.columns.insert("quantity_milli".into(), 9_000.into());
    two.inject(vec![other])?;
    let report = two.pull_b()?;
    assert_eq!(report.conflicts.len(), 1, "{report:?}");
    assert_eq!(
        two.conflict_kinds(&two.b)?,
        vec!["different_content".to_owned()]
    );
    assert_eq!(b.stock_on_hand(oil.id, "main")?, 5_000);
    Ok(())
}

#[test]
fn a_master_data_row_delivered_again_merges_by_its_stamps() -> R {
    let two = Two::new()?;
    let a = two.a.tenant(&two.tenant)?;
    let first = customer("C-1", None);
    a.insert(&two.admin, &first)?;
    two.sync_a()?;
    two.pull_b()?;
    let template = two.logged(first.id)?;
    let device = RowId::new();
    // The same insert again, and once more with a newer stamp and another name.
    let same = again(&template, device, 1)?;
    let mut renamed = again(&template, device, 2)?;
    renamed.columns.insert("first_name".into(), "Bea".into());
    two.inject(vec![same, renamed])?;
    let report = two.pull_b()?;
    assert!(report.conflicts.is_empty(), "{report:?}");
    let b = two.b.tenant(&two.tenant)?;
    assert_eq!(b.fetch::<Customer>(first.id)?.first_name, "Bea");
    assert_eq!(b.list::<Customer>(&ListQuery::new())?.rows.len(), 1);
    Ok(())
}
