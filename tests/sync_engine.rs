//! The sync engine's thread and the push step's failure handling, through a transport that
//! loses the network, loses answers after the server committed, answers 5xx, and refuses
//! tokens: a failed round retries by itself, an answer lost after the commit ends in "sent
//! again, stored once", a refused operation is set aside without holding back the rest, and
//! one tenant's failure never holds another back.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{product, tid};
use pos_tenancy::catalog::Product;
use pos_tenancy::protocol::{Operation, OperationPage, OperationResult, TenantConfig};
use pos_tenancy::sync::{
    DirectTransport, ErrorClass, SyncConfig, SyncEngine, SyncEvent, SyncOptions, Syncer, Transport,
    TransportError,
};
use pos_tenancy::{CentralStore, NewTenant, SqliteCentral, Store, TenantAccess, TenantId};

type R = Result<(), Box<dyn std::error::Error>>;

#[derive(Debug, Default)]
struct Faults {
    offline: bool,
    /// The next pushes are committed by the server but their answer never arrives.
    lose_answers: usize,
    /// The next calls answer 503.
    unavailable: usize,
    /// Tokens the server refuses.
    bad_token: Option<String>,
    pushes: usize,
}

struct Flaky {
    inner: DirectTransport<SqliteCentral>,
    faults: Arc<Mutex<Faults>>,
}

impl Flaky {
    fn gate(&self, token: &str) -> Result<(), TransportError> {
        let mut f = self
            .faults
            .lock()
            .map_err(|_| TransportError::Malformed("poisoned".into()))?;
        if f.offline {
            return Err(TransportError::Unreachable("connection refused".into()));
        }
        if f.unavailable > 0 {
            f.unavailable -= 1;
            return Err(TransportError::Server {
                status: 503,
                code: "unavailable".into(),
                message: "try again".into(),
                retry_after: None,
            });
        }
        if f.bad_token.as_deref() == Some(token) {
            return Err(TransportError::Server {
                status: 401,
                code: "unauthorized".into(),
                message: "expired token".into(),
                retry_after: None,
            });
        }
        Ok(())
    }
}

impl Transport for Flaky {
    fn push(
        &self,
        tenant: &TenantId,
        token: &str,
        operations: &[Operation],
    ) -> Result<Vec<OperationResult>, TransportError> {
        self.gate(token)?;
        let results = self.inner.push(tenant, token, operations)?;
        let mut f = self
            .faults
            .lock()
            .map_err(|_| TransportError::Malformed("poisoned".into()))?;
        f.pushes += 1;
        if f.lose_answers > 0 {
            f.lose_answers -= 1;
            return Err(TransportError::Unreachable(
                "connection reset after the request".into(),
            ));
        }
        Ok(results)
    }

    fn pull(
        &self,
        tenant: &TenantId,
        token: &str,
        after: u64,
        limit: u32,
    ) -> Result<OperationPage, TransportError> {
        self.gate(token)?;
        self.inner.pull(tenant, token, after, limit)
    }

    fn config(&self, tenant: &TenantId, token: &str) -> Result<TenantConfig, TransportError> {
        self.gate(token)?;
        self.inner.config(tenant, token)
    }
}

struct Setup {
    dir: tempfile::TempDir,
    central: Arc<SqliteCentral>,
    faults: Arc<Mutex<Faults>>,
}

impl Setup {
    fn new(tenants: &[&str]) -> Result<Self, Box<dyn std::error::Error>> {
        let central = Arc::new(SqliteCentral::open_in_memory()?);
        for t in tenants {
            central.add_tenant(&NewTenant::new(tid(t), "Shop"))?;
        }
        Ok(Self {
            dir: tempfile::tempdir()?,
            central,
            faults: Arc::new(Mutex::new(Faults::default())),
        })
    }

    fn transport(&self) -> Flaky {
        Flaky {
            inner: DirectTransport::new(Arc::clone(&self.central)),
            faults: Arc::clone(&self.faults),
        }
    }

    fn terminal(&self, name: &str, tenants: &[&str]) -> Result<Store, Box<dyn std::error::Error>> {
        let store = Store::open(self.dir.path().join(name))?;
        for t in tenants {
            if store.tenant(&tid(t)).is_err() {
                store.add_tenant(&NewTenant::new(tid(t), "Shop"))?;
            }
        }
        Ok(store)
    }

    fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        match self.faults.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn logged(&self, tenant: &str) -> Result<u64, Box<dyn std::error::Error>> {
        Ok(self.central.operations_after(&tid(tenant), 0, 1)?.high)
    }
}

/// Waits for an event the predicate accepts, at most `limit`.
fn wait_for(
    engine: &SyncEngine,
    limit: Duration,
    mut want: impl FnMut(&SyncEvent) -> bool,
) -> bool {
    let end = Instant::now() + limit;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match engine.events().recv_timeout(left) {
            Ok(e) if want(&e) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

#[test]
fn an_answer_lost_after_the_servers_commit_is_sent_again_and_stored_once() -> R {
    let s = Setup::new(&["caps"])?;
    let store = s.terminal("a.db", &["caps"])?;
    let t = store.tenant(&tid("caps"))?;
    let admin = t.bootstrap_admin("owner", "Owner")?;
    for i in 0..5 {
        t.insert(&admin, &product(&format!("P-{i}"), 100))?;
    }
    let transport = s.transport();
    let options = SyncOptions::default().batch_size(2);
    s.faults().lose_answers = 1;
    let err = Syncer::new(&store, &transport, &options)
        .push(&tid("caps"), "tok")
        .err()
        .ok_or("the lost answer was not reported")?;
    assert_eq!(err.class, ErrorClass::Transient);
    let logged = s.logged("caps")?;
    assert!(logged >= 1, "the server committed the first batch");
    let pending = store.sync_status(&tid("caps"))?.pending;
    assert_eq!(pending, 6, "nothing leaves the outbox without an answer");
    Syncer::new(&store, &transport, &options).push(&tid("caps"), "tok")?;
    assert_eq!(store.sync_status(&tid("caps"))?.pending, 0);
    assert_eq!(s.logged("caps")?, 6, "six operations stored once each");
    Ok(())
}

#[test]
fn a_refused_operation_is_set_aside_and_the_rest_go_on() -> R {
    let s = Setup::new(&["caps"])?;
    let path = s.dir.path().join("a.db");
    let store = s.terminal("a.db", &["caps"])?;
    let t = store.tenant(&tid("caps"))?;
    let admin = t.bootstrap_admin("owner", "Owner")?;
    t.insert(&admin, &product("GOOD-1", 100))?;
    // An operation the server refuses (a node of an older build wrote a word it no longer
    // takes): written into the outbox behind the crate's back.
    {
        let raw = rusqlite::Connection::open(&path)?;
        raw.execute(
            "INSERT INTO pending_operations (id, tenant_id, device_id, hlc, table_name, row_id,
                 kind, columns, created_at)
             SELECT ?1, tenant_id, device_id, substr(max(hlc), 1, 17) || '999990', 'products',
                 ?2, 'insert', '{\"kind\":\"bogus\"}', created_at FROM pending_operations",
            rusqlite::params![pos_tenancy::RowId::new(), pos_tenancy::RowId::new()],
        )?;
    }
    t.insert(&admin, &product("GOOD-2", 200))?;
    let transport = s.transport();
    let options = SyncOptions::default();
    let report = Syncer::new(&store, &transport, &options).push(&tid("caps"), "tok")?;
    assert_eq!(report.set_aside, 1);
    assert_eq!(
        report.pushed, 4,
        "admin, GOOD-1, GOOD-2, and the conflict that records the refusal"
    );
    let status = store.sync_status(&tid("caps"))?;
    assert_eq!((status.pending, status.set_aside), (0, 1));
    assert_eq!(
        status.open_conflicts, 1,
        "the refusal is in front of a person"
    );
    Ok(())
}

#[test]
fn the_engine_retries_by_itself_when_the_server_comes_back_and_reports_it() -> R {
    let s = Setup::new(&["caps"])?;
    let store = s.terminal("a.db", &["caps"])?;
    let t = store.tenant(&tid("caps"))?;
    let admin = t.bootstrap_admin("owner", "Owner")?;
    t.insert(&admin, &product("OF-1", 100))?;
    s.faults().offline = true;
    let engine = SyncEngine::start(
        s.terminal("a.db", &[])?,
        s.transport(),
        |_: &TenantId, _: bool| Ok::<_, String>("tok".to_owned()),
        SyncConfig::new()
            .interval(Duration::from_millis(200))
            .backoff(Duration::from_millis(50), Duration::from_millis(400)),
    );
    assert!(wait_for(&engine, Duration::from_secs(10), |e| matches!(
        e,
        SyncEvent::Offline(..)
    )));
    let status = store.sync_status(&tid("caps"))?;
    assert!(!status.online);
    assert_eq!(
        status.last_error.as_ref().map(|e| e.class.as_str()),
        Some("transient")
    );
    // The network returns; no local write happens, and the engine pushes by itself.
    s.faults().offline = false;
    assert!(wait_for(&engine, Duration::from_secs(10), |e| matches!(
        e,
        SyncEvent::Pushed(_, 2)
    )));
    engine.shutdown();
    let status = store.sync_status(&tid("caps"))?;
    assert!(status.online && status.pending == 0 && status.last_error.is_none());
    assert_eq!(s.logged("caps")?, 2);
    Ok(())
}

#[test]
fn a_refused_token_is_asked_for_again_once_and_one_tenant_never_holds_another_back() -> R {
    let s = Setup::new(&["caps", "bolt"])?;
    let store = s.terminal("a.db", &["caps", "bolt"])?;
    for t in ["caps", "bolt"] {
        let h = store.tenant(&tid(t))?;
        let admin = h.bootstrap_admin("owner", "Owner")?;
        h.insert(&admin, &product("OF-1", 100))?;
    }
    s.faults().bad_token = Some("old".into());
    let asked: Arc<Mutex<Vec<(String, bool)>>> = Arc::default();
    let log = Arc::clone(&asked);
    let tokens = move |t: &TenantId, refresh: bool| {
        if let Ok(mut l) = log.lock() {
            l.push((t.to_string(), refresh));
        }
        // caps' provider only ever has the refused token; bolt's is good.
        Ok::<_, String>(if t.as_str() == "caps" { "old" } else { "new" }.to_owned())
    };
    let engine = SyncEngine::start(
        s.terminal("a.db", &[])?,
        s.transport(),
        tokens,
        SyncConfig::new().backoff(Duration::from_millis(50), Duration::from_millis(200)),
    );
    assert!(engine.sync_and_wait(None, Duration::from_secs(10)));
    engine.shutdown();
    assert_eq!(s.logged("bolt")?, 2, "bolt synced although caps cannot");
    assert_eq!(s.logged("caps")?, 0);
    let status = store.sync_status(&tid("caps"))?;
    assert_eq!(
        status.last_error.as_ref().map(|e| e.class.as_str()),
        Some("auth")
    );
    let asked = asked.lock().map_err(|_| "poisoned")?.clone();
    let caps_asks: Vec<bool> = asked
        .iter()
        .filter(|(t, _)| t == "caps")
        .map(|(_, refresh)| *refresh)
        .collect();
    assert!(caps_asks.starts_with(&[false, true]), "{caps_asks:?}");
    Ok(())
}

#[test]
fn a_5xx_pauses_only_its_round_and_the_status_says_so() -> R {
    let s = Setup::new(&["caps"])?;
    let store = s.terminal("a.db", &["caps"])?;
    let t = store.tenant(&tid("caps"))?;
    let admin = t.bootstrap_admin("owner", "Owner")?;
    t.insert(&admin, &product("OF-1", 100))?;
    s.faults().unavailable = 1;
    let transport = s.transport();
    let options = SyncOptions::default();
    let err = Syncer::new(&store, &transport, &options)
        .round(&tid("caps"), "tok")
        .err()
        .ok_or("a 503 was not reported")?;
    assert_eq!(err.class, ErrorClass::Transient);
    assert!(err.to_string().contains("caps") && err.to_string().contains("push"));
    Syncer::new(&store, &transport, &options).round(&tid("caps"), "tok")?;
    assert_eq!(store.sync_status(&tid("caps"))?.pending, 0);
    let b = s.terminal("b.db", &["caps"])?;
    Syncer::new(&b, &transport, &options).round(&tid("caps"), "tok")?;
    assert_eq!(
        b.tenant(&tid("caps"))?
            .list::<Product>(&pos_tenancy::ListQuery::new())?
            .rows
            .len(),
        1
    );
    Ok(())
}

#[test]
fn a_paused_tenant_is_not_synced_until_resumed() -> R {
    let s = Setup::new(&["caps", "bolt"])?;
    let store = s.terminal("a.db", &["caps", "bolt"])?;
    for t in ["caps", "bolt"] {
        let h = store.tenant(&tid(t))?;
        let admin = h.bootstrap_admin("owner", "Owner")?;
        h.insert(&admin, &product("OF-1", 100))?;
    }
    let engine = SyncEngine::start(
        s.terminal("a.db", &[])?,
        s.transport(),
        |_: &TenantId, _: bool| Ok::<_, String>("tok".to_owned()),
        SyncConfig::new()
            .interval(Duration::from_secs(60))
            .paused(vec![tid("caps")]),
    );
    assert!(engine.sync_and_wait(None, Duration::from_secs(10)));
    assert_eq!(s.logged("caps")?, 0, "paused from the start");
    engine.resume(&tid("caps"));
    assert!(engine.sync_and_wait(Some(&tid("caps")), Duration::from_secs(10)));
    assert_eq!(s.logged("caps")?, 2);
    engine.pause(&tid("caps"));
    store
        .tenant(&tid("caps"))?
        .insert(&first_admin(&store)?, &product("OF-2", 100))?;
    assert!(engine.sync_and_wait(None, Duration::from_secs(10)));
    assert_eq!(s.logged("caps")?, 2, "paused again: the new product waits");
    assert_eq!(s.logged("bolt")?, 2);
    engine.resume(&tid("caps"));
    assert!(engine.sync_and_wait(Some(&tid("caps")), Duration::from_secs(10)));
    engine.shutdown();
    assert_eq!(s.logged("caps")?, 3);
    Ok(())
}

fn first_admin(store: &Store) -> Result<pos_tenancy::Actor, Box<dyn std::error::Error>> {
    let h = store.tenant(&tid("caps"))?;
    let users = h.list::<pos_tenancy::catalog::User>(&pos_tenancy::ListQuery::new())?;
    let user = users.rows.first().ok_or("no user")?;
    Ok(h.actor(user.id)?)
}
