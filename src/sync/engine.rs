//! The engine: sync rounds for every tenant of a node on a thread of their own, driven through
//! crossbeam channels. The application keeps selling on its own `Store`; the engine opens
//! nothing and owns the `Store` it is given (a second one on the same file).

use std::collections::HashMap;
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::ids::{RowId, TenantId};
use crate::store::Store;
use crate::sync::round::{RoundReport, SyncOptions, Syncer};
use crate::sync::state::{Step, SyncError};
use crate::sync::transport::{ErrorClass, Transport};
use crate::tenant::settings::TenantStatus;

/// Where the engine gets each tenant's device token.
pub trait TokenProvider: Send {
    /// The token for `tenant`; `refresh` is set after the server refused the last one.
    /// An error says why there is none (it is reported as an auth error).
    fn token(&mut self, tenant: &TenantId, refresh: bool) -> Result<String, String>;
}

impl<F: FnMut(&TenantId, bool) -> Result<String, String> + Send> TokenProvider for F {
    fn token(&mut self, tenant: &TenantId, refresh: bool) -> Result<String, String> {
        self(tenant, refresh)
    }
}

/// Tokens kept as files, `DIR/<tenant>.token` (what `pos-node sync --token-dir` reads); read
/// again on every request for a token, so a replaced file is picked up.
#[derive(Debug, Clone)]
pub struct TokenDir {
    dir: PathBuf,
}

impl TokenDir {
    /// Tokens in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The tenants with a token file, sorted. Files whose name is not a valid tenant id are
    /// skipped.
    pub fn tenants(&self) -> std::io::Result<Vec<TenantId>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".token")) else {
                continue;
            };
            if let Ok(id) = stem.parse() {
                out.push(id);
            }
        }
        out.sort();
        Ok(out)
    }
}

impl TokenProvider for TokenDir {
    fn token(&mut self, tenant: &TenantId, _refresh: bool) -> Result<String, String> {
        let path = self.dir.join(format!("{tenant}.token"));
        read_token(&path)
    }
}

/// A token file's token: its text without surrounding whitespace, refused when empty.
pub fn read_token(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the token file {}: {e}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(format!("the token file {} is empty", path.display()));
    }
    Ok(token.to_owned())
}

/// How the engine runs, set before it starts.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    interval: Duration,
    first_retry: Duration,
    max_backoff: Duration,
    options: SyncOptions,
    tenants: Option<Vec<TenantId>>,
    paused: Vec<TenantId>,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
            first_retry: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            options: SyncOptions::default(),
            tenants: None,
            paused: Vec::new(),
        }
    }
}

impl SyncConfig {
    /// The defaults: a round every 5 s, first retry after 1 s, backoff up to 60 s.
    pub fn new() -> Self {
        Self::default()
    }

    /// Time between rounds of a tenant that is in step (default 5 s).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Backoff after a failed round: `first` (default 1 s), doubled per failure up to `max`
    /// (default 60 s), each with up to a quarter of jitter; a server's `Retry-After` is
    /// honoured when longer.
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.first_retry = first;
        self.max_backoff = max.max(first);
        self
    }

    /// Batch and page sizes and merge resolvers (see [`SyncOptions`]).
    pub fn options(mut self, options: SyncOptions) -> Self {
        self.options = options;
        self
    }

    /// Tenants that start paused, until [`SyncEngine::resume`] (default: none).
    pub fn paused(mut self, tenants: Vec<TenantId>) -> Self {
        self.paused = tenants;
        self
    }

    /// Sync only these tenants (default: every active tenant of the store).
    pub fn tenants(mut self, tenants: Vec<TenantId>) -> Self {
        self.tenants = Some(tenants);
        self
    }
}

/// What the application asks of the engine.
#[derive(Debug)]
enum Command {
    SyncNow(Option<TenantId>, Option<Sender<()>>),
    Pause(TenantId),
    Resume(TenantId),
    Shutdown,
}

/// What the engine tells the application.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SyncEvent {
    /// The server answered again after failures (or for the first time).
    Online(TenantId),
    /// The server could not be reached; the engine retries by itself.
    Offline(TenantId, String),
    /// Operations of this node acknowledged by the server.
    Pushed(TenantId, usize),
    /// Other terminals' operations merged here.
    Pulled(TenantId, usize),
    /// A conflict recorded for a person (see `pos-node conflicts list`).
    Conflict(TenantId, RowId),
    /// A round failed; the error names the step, its class and what a person can do.
    Error(SyncError),
    /// Operations wait while the server answers, and nothing has moved for 30 s.
    Stalled(TenantId),
    /// A round ended well.
    RoundDone(TenantId, RoundReport),
}

/// A running sync engine. Dropping it stops the thread after the round in flight.
#[derive(Debug)]
pub struct SyncEngine {
    commands: Sender<Command>,
    events: Receiver<SyncEvent>,
    thread: Option<JoinHandle<()>>,
}

impl SyncEngine {
    /// Starts the engine's thread on `store` (open a second `Store` on the terminal's file for
    /// it), reaching the server through `transport` with `tokens`.
    pub fn start<T, P>(store: Store, transport: T, tokens: P, config: SyncConfig) -> Self
    where
        T: Transport + 'static,
        P: TokenProvider + 'static,
    {
        let (commands, inbox) = crossbeam_channel::unbounded();
        let (outbox, events) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("pos-sync".into())
            .spawn(move || {
                let mut worker = Worker {
                    store,
                    transport,
                    tokens,
                    config,
                    runs: HashMap::new(),
                    events: outbox,
                    seed: seed(),
                };
                worker.run(&inbox);
            })
            .ok();
        Self {
            commands,
            events,
            thread,
        }
    }

    /// The engine's events, in order.
    pub fn events(&self) -> &Receiver<SyncEvent> {
        &self.events
    }

    /// Runs a round now for `tenant` (or every tenant), without waiting for it.
    pub fn sync_now(&self, tenant: Option<&TenantId>) {
        let _ = self.commands.send(Command::SyncNow(tenant.cloned(), None));
    }

    /// Runs a round now for `tenant` (or every tenant) and waits until it has run, at most
    /// `timeout`; `false` if it had not run by then or the engine has stopped.
    pub fn sync_and_wait(&self, tenant: Option<&TenantId>, timeout: Duration) -> bool {
        let (done, wait) = crossbeam_channel::bounded(1);
        if self
            .commands
            .send(Command::SyncNow(tenant.cloned(), Some(done)))
            .is_err()
        {
            return false;
        }
        wait.recv_timeout(timeout).is_ok()
    }

    /// Stops syncing a tenant until [`SyncEngine::resume`].
    pub fn pause(&self, tenant: &TenantId) {
        let _ = self.commands.send(Command::Pause(tenant.clone()));
    }

    /// Syncs a paused tenant again.
    pub fn resume(&self, tenant: &TenantId) {
        let _ = self.commands.send(Command::Resume(tenant.clone()));
    }

    /// Stops the engine after the round in flight and waits for its thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.commands.send(Command::Shutdown);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for SyncEngine {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A tenant's place in the engine's schedule.
#[derive(Debug)]
struct Run {
    due: Instant,
    failures: u32,
    paused: bool,
    online: Option<bool>,
    stalled: bool,
}

impl Run {
    fn new(now: Instant) -> Self {
        Self {
            due: now,
            failures: 0,
            paused: false,
            online: None,
            stalled: false,
        }
    }
}

struct Worker<T, P> {
    store: Store,
    transport: T,
    tokens: P,
    config: SyncConfig,
    runs: HashMap<TenantId, Run>,
    events: Sender<SyncEvent>,
    seed: u64,
}

fn seed() -> u64 {
    let id = RowId::new();
    let bytes = id.as_uuid().as_bytes();
    u64::from_le_bytes([
        bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15],
    ]) | 1
}

impl<T: Transport, P: TokenProvider> Worker<T, P> {
    fn run(&mut self, inbox: &Receiver<Command>) {
        loop {
            let now = Instant::now();
            let tenants = self.tenants();
            self.runs.retain(|t, _| tenants.contains(t));
            for t in &tenants {
                let paused = self.config.paused.contains(t);
                self.runs.entry(t.clone()).or_insert_with(|| Run {
                    paused,
                    ..Run::new(now)
                });
            }
            let due: Vec<TenantId> = self
                .runs
                .iter()
                .filter(|(_, r)| !r.paused && r.due <= now)
                .map(|(t, _)| t.clone())
                .collect();
            for tenant in due {
                self.round(&tenant);
            }
            let wait = self
                .runs
                .values()
                .filter(|r| !r.paused)
                .map(|r| r.due.saturating_duration_since(Instant::now()))
                .min()
                .unwrap_or(self.config.interval);
            match inbox.recv_timeout(wait) {
                Ok(Command::Shutdown) | Err(RecvTimeoutError::Disconnected) => return,
                Ok(Command::SyncNow(tenant, done)) => {
                    let targets: Vec<TenantId> = match tenant {
                        Some(t) => vec![t],
                        None => self.runs.keys().cloned().collect(),
                    };
                    let known = self.tenants();
                    for t in targets {
                        // A paused tenant stays paused; an unknown one is not synced.
                        let paused = self.runs.get(&t).is_some_and(|r| r.paused);
                        if !paused && (self.runs.contains_key(&t) || known.contains(&t)) {
                            self.runs
                                .entry(t.clone())
                                .or_insert_with(|| Run::new(Instant::now()));
                            self.round(&t);
                        }
                    }
                    if let Some(done) = done {
                        let _ = done.send(());
                    }
                }
                Ok(Command::Pause(t)) => {
                    self.runs
                        .entry(t)
                        .or_insert_with(|| Run::new(Instant::now()))
                        .paused = true;
                }
                Ok(Command::Resume(t)) => {
                    let run = self
                        .runs
                        .entry(t)
                        .or_insert_with(|| Run::new(Instant::now()));
                    run.paused = false;
                    run.due = Instant::now();
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// The tenants to sync: the configured ones, or every active tenant of the store.
    fn tenants(&self) -> Vec<TenantId> {
        if let Some(t) = &self.config.tenants {
            return t.clone();
        }
        match self.store.tenants() {
            Ok(all) => all
                .into_iter()
                .filter(|t| t.status == TenantStatus::Active)
                .map(|t| t.id)
                .collect(),
            Err(_) => self.runs.keys().cloned().collect(),
        }
    }

    fn emit(&self, event: SyncEvent) {
        let _ = self.events.send(event);
    }

    /// One round of one tenant, with one token refresh on an auth failure.
    fn round(&mut self, tenant: &TenantId) {
        let mut result = self.try_round(tenant, false);
        if matches!(&result, Err(e) if e.class == ErrorClass::Auth) {
            result = self.try_round(tenant, true);
        }
        let now = Instant::now();
        let interval = self.config.interval;
        let delay = match &result {
            Ok(_) => interval,
            Err(e) => {
                let failures = self.runs.get(tenant).map_or(1, |r| r.failures + 1);
                self.backoff(failures, e.retry_after)
            }
        };
        let was_online = self.runs.get(tenant).and_then(|r| r.online);
        let stalled = self
            .store
            .sync_status(tenant)
            .map(|s| s.stalled)
            .unwrap_or(false);
        match result {
            Ok(report) => {
                if was_online != Some(true) {
                    self.emit(SyncEvent::Online(tenant.clone()));
                }
                if report.pushed > 0 {
                    self.emit(SyncEvent::Pushed(tenant.clone(), report.pushed));
                }
                if report.applied > 0 {
                    self.emit(SyncEvent::Pulled(tenant.clone(), report.applied));
                }
                for id in &report.conflicts {
                    self.emit(SyncEvent::Conflict(tenant.clone(), *id));
                }
                self.emit(SyncEvent::RoundDone(tenant.clone(), report));
                if let Some(run) = self.runs.get_mut(tenant) {
                    run.failures = 0;
                    run.online = Some(true);
                }
            }
            Err(e) => {
                let offline = e.class == ErrorClass::Transient;
                if offline && was_online != Some(false) {
                    self.emit(SyncEvent::Offline(tenant.clone(), e.message.clone()));
                }
                self.emit(SyncEvent::Error(e));
                if let Some(run) = self.runs.get_mut(tenant) {
                    run.failures = run.failures.saturating_add(1);
                    run.online = Some(!offline);
                }
            }
        }
        let mut report_stall = false;
        if let Some(run) = self.runs.get_mut(tenant) {
            run.due = now + delay;
            report_stall = stalled && !run.stalled;
            run.stalled = stalled;
        }
        if report_stall {
            self.emit(SyncEvent::Stalled(tenant.clone()));
        }
    }

    fn try_round(&mut self, tenant: &TenantId, refresh: bool) -> Result<RoundReport, SyncError> {
        let token = self
            .tokens
            .token(tenant, refresh)
            .map_err(|m| SyncError::new(tenant, Step::Push, ErrorClass::Auth, m))?;
        Syncer::new(&self.store, &self.transport, &self.config.options).round(tenant, &token)
    }

    /// Capped exponential backoff with jitter; a longer `Retry-After` wins (up to an hour).
    fn backoff(&mut self, failures: u32, retry_after: Option<Duration>) -> Duration {
        let first = self.config.first_retry.as_millis() as u64;
        let max = self.config.max_backoff.as_millis() as u64;
        let exp = first.saturating_mul(1u64 << failures.saturating_sub(1).min(20));
        let base = exp.min(max);
        // xorshift: jitter so terminals that lost the server together do not return together.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let jitter = if base >= 4 { self.seed % (base / 4) } else { 0 };
        let delay = Duration::from_millis(base - jitter);
        match retry_after {
            Some(r) => delay.max(r.min(Duration::from_secs(3600))),
            None => delay,
        }
    }
}
