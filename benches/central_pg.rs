//! pos-central on PostgreSQL against SQLite, through real `pos-central serve` processes (the
//! binary cargo built for this bench) over loopback HTTP, in one run:
//!
//! 1. **Push throughput**: `POS_BENCH_PG_CLIENTS` clients (default 8), each for its own tenant,
//!    push `POS_BENCH_PG_BATCHES` batches (default 20) of `POS_BENCH_PG_BATCH` operations
//!    (default 100) one after another, bodies made before the clock starts, against (a) one
//!    server on the SQLite store, (b) one server on PostgreSQL, (c) two servers on the same
//!    PostgreSQL database with the clients spread over both. Printed: operations per second of
//!    each and the ratios.
//! 2. **1,000 tenants**: `POS_BENCH_PG_TENANTS` tenants (default 1,000) with
//!    `POS_BENCH_PG_DEVICES` devices each (default 3), on `POS_BENCH_PG_PROCESSES` servers
//!    (default 2) over PostgreSQL. Requests arrive at a fixed offered rate (open loop: each is
//!    timed from when it was due, so a slow server cannot slow the arrivals and hide its
//!    queue), device after device, each device alternating a push of 5 operations (a sale's
//!    worth) and a pull after its cursor. The rate starts at `POS_BENCH_PG_START_RATE`
//!    requests/s (default 50) and grows by `POS_BENCH_PG_GROWTH` percent (default 50) each step
//!    of `POS_BENCH_PG_STEP_SECS` seconds (default 3), up to `POS_BENCH_PG_MAX_RATE` (default
//!    20,000), until a step's p95 reaches 500 ms, more than 1% of its requests fail or less
//!    than 95% of the offered rate is served; then two
//!    halvings between the last rate that held and that one. Printed: each step's achieved
//!    rate and p50/p95/p99, and the highest rate that held.
//!
//! The cluster is a throwaway one the bench starts itself (`tests/common/pg.rs`, shared with
//! the tests through `#[path]`), with commits synced to disk as a production server has them
//! (`POS_BENCH_PG_DURABLE=0` turns fsync off). The SQLite store runs as it always does
//! (WAL, `synchronous=NORMAL`: a commit waits for no fsync). Each server process has
//! `POS_BENCH_PG_POOL` connections (default 8). The servers' CPU time is printed beside each
//! figure: the bench, the servers and PostgreSQL share this machine's cores.
//!
//! Where PostgreSQL is not installed, the bench says so and stops (as the tests skip).

#[path = "../tests/common/pg.rs"]
mod pg;

mod common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{env_count, load};
use pg::{PgCluster, PgOptions};
use pos_tenancy::server::issue_token;
use pos_tenancy::{
    CentralStore, Hlc, LimitsUpdate, NewTenant, Operation, OperationKind, PgCentral, Plan, RowId,
    SqliteCentral, TenantId,
};

const BIN: &str = env!("CARGO_BIN_EXE_pos-central");
const SECRET: &str = "bench-secret-that-is-long-enough-for-hs256";
/// Operations in a push of the 1,000-tenant run: a sale, its lines and its payment.
const SALE_OPS: usize = 5;
/// The latency bound of the 1,000-tenant run (the roll-out plan's success metric).
const P95_BOUND: Duration = Duration::from_millis(500);
/// Requests in flight at most in the 1,000-tenant run; one due beyond that is counted failed.
const MAX_IN_FLIGHT: usize = 2_000;

/// The knobs, read once.
struct Knobs {
    clients: usize,
    batches: usize,
    batch: usize,
    pool: usize,
    tenants: usize,
    devices: usize,
    processes: usize,
    start_rate: f64,
    growth: f64,
    step: Duration,
    max_rate: f64,
    durable: bool,
}

impl Knobs {
    fn read() -> Self {
        let n = |name, default| env_count(name, default) as usize;
        Self {
            clients: n("POS_BENCH_PG_CLIENTS", 8).max(1),
            batches: n("POS_BENCH_PG_BATCHES", 20).max(1),
            batch: n("POS_BENCH_PG_BATCH", 100).clamp(1, 1_000),
            pool: n("POS_BENCH_PG_POOL", 8).max(1),
            tenants: n("POS_BENCH_PG_TENANTS", 1_000).max(1),
            devices: n("POS_BENCH_PG_DEVICES", 3).max(1),
            processes: n("POS_BENCH_PG_PROCESSES", 2).max(1),
            start_rate: env_count("POS_BENCH_PG_START_RATE", 50).max(1) as f64,
            growth: 1.0 + env_count("POS_BENCH_PG_GROWTH", 50).max(5) as f64 / 100.0,
            step: Duration::from_secs(env_count("POS_BENCH_PG_STEP_SECS", 3).max(1)),
            max_rate: env_count("POS_BENCH_PG_MAX_RATE", 20_000).max(1) as f64,
            durable: env_count("POS_BENCH_PG_DURABLE", 1) != 0,
        }
    }
}

/// A `pos-central serve` process, killed on drop.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    /// Starts `pos-central serve` with `db` (its database flags) and waits for its address.
    fn start(db: &[&str], secret: &Path, log: &Path) -> Self {
        let log = std::fs::File::create(log).expect("a server log");
        let mut child = Command::new(BIN)
            .arg("serve")
            .args(db)
            .args(["--listen", "127.0.0.1:0", "--rate-limit", "1000000/s"])
            .arg("--secret-file")
            .arg(secret)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("pos-central serve starts");
        let stdout = child.stdout.take().expect("its stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("its first line");
        let Some(addr) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            panic!("pos-central serve did not start ({line:?}); see its log");
        };
        let base = format!("http://{addr}");
        Self { child, base }
    }

    /// User and system time of the process so far (`/proc/PID/stat`, ticks of 10 ms).
    fn cpu(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        let fields: Vec<u64> = stat
            .rsplit_once(')')
            .map(|(_, rest)| {
                rest.split_whitespace()
                    .map(|f| f.parse().unwrap_or(0))
                    .collect()
            })
            .unwrap_or_default();
        let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
        Duration::from_millis(ticks * 10)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cpu_of(servers: &[Server]) -> Duration {
    servers.iter().map(Server::cpu).sum()
}

fn tenant_id(n: usize) -> TenantId {
    format!("t{n:05}").parse().expect("a tenant slug")
}

/// `n` tenants, on a plan whose limits never bind.
fn add_tenants(store: &dyn CentralStore, n: usize) -> Vec<TenantId> {
    let unlimited = LimitsUpdate {
        max_api_calls_month: Some(1_000_000_000_000),
        ..LimitsUpdate::default()
    };
    (0..n)
        .map(|i| {
            let id = tenant_id(i);
            let new = NewTenant::new(id.clone(), &format!("Tenant {i}")).plan(Plan::Enterprise);
            store
                .add_tenant_with_limits(&new, &unlimited)
                .expect("a tenant");
            id
        })
        .collect()
}

fn token(tenant: &TenantId, device: RowId) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
        + 86_400;
    issue_token(SECRET.as_bytes(), tenant, &device.to_string(), exp).expect("a token")
}

/// A push body of `n` fresh customer inserts by `device`, stamped now.
fn push_body(tenant: &TenantId, device: RowId, counter: &AtomicU64, n: usize) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64;
    let ops: Vec<Operation> = (0..n)
        .map(|i| {
            let c = counter.fetch_add(1, Ordering::Relaxed);
            let columns = serde_json::json!({
                "code": format!("C-{c:09}"), "first_name": "Ana", "last_name": "Diaz",
                "company": null, "email": format!("c{c}@example.com"), "phone": "+1 555 0100",
                "price_level_id": null, "tax_exempt": false, "notes": null,
                "created_at": "2026-11-24T05:41:06.123Z", "updated_at": "2026-11-24T05:41:06.123Z",
            });
            Operation {
                id: RowId::new(),
                tenant_id: tenant.clone(),
                device_id: device,
                hlc: Hlc::new(now, i as u32, device).expect("a stamp"),
                actor_user_id: None,
                table: "customers".into(),
                row_id: RowId::new(),
                kind: OperationKind::Insert,
                columns: columns.as_object().cloned().unwrap_or_default(),
                unit: None,
                base: None,
            }
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "operations": ops })).expect("JSON")
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(MAX_IN_FLIGHT)
        .build()
        .expect("an HTTP client")
}

/// One push; whether every operation was accepted.
async fn push(
    client: &reqwest::Client,
    base: &str,
    tenant: &TenantId,
    token: &str,
    body: Vec<u8>,
) -> bool {
    let sent = client
        .post(format!("{base}/v1/tenants/{tenant}/operations"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    let Ok(answer) = sent else { return false };
    if !answer.status().is_success() {
        return false;
    }
    let Ok(v) = answer.json::<serde_json::Value>().await else {
        return false;
    };
    v["results"]
        .as_array()
        .is_some_and(|r| r.iter().all(|r| r["status"] == "accepted"))
}

/// Measure 1: the operations per second the servers at `bases` took, and their CPU time.
fn push_throughput(
    rt: &tokio::runtime::Runtime,
    knobs: &Knobs,
    servers: &[Server],
    tenants: &[TenantId],
) -> (f64, Duration) {
    let counter = AtomicU64::new(0);
    // Bodies made before the clock starts: the client's JSON is not what is measured. The
    // first batch of each client warms its connection and the server's pool.
    let work: Vec<(TenantId, String, String, Vec<Vec<u8>>)> = (0..knobs.clients)
        .map(|c| {
            let tenant = tenants[c % tenants.len()].clone();
            let device = RowId::new();
            let bodies = (0..=knobs.batches)
                .map(|_| push_body(&tenant, device, &counter, knobs.batch))
                .collect();
            let base = servers[c % servers.len()].base.clone();
            let token = token(&tenant, device);
            (tenant, base, token, bodies)
        })
        .collect();
    let client = http_client();
    let ready = Arc::new(tokio::sync::Barrier::new(knobs.clients + 1));
    let cpu_before = cpu_of(servers);
    let elapsed = rt.block_on(async {
        let mut tasks = Vec::new();
        for (tenant, base, token, bodies) in work {
            let client = client.clone();
            let ready = Arc::clone(&ready);
            tasks.push(tokio::spawn(async move {
                let mut bodies = bodies.into_iter();
                let warm = bodies.next().expect("a warm-up batch");
                assert!(
                    push(&client, &base, &tenant, &token, warm).await,
                    "warm-up push"
                );
                ready.wait().await;
                for body in bodies {
                    assert!(
                        push(&client, &base, &tenant, &token, body).await,
                        "a push failed"
                    );
                }
            }));
        }
        ready.wait().await;
        let started = Instant::now();
        for t in tasks {
            t.await.expect("a client task");
        }
        started.elapsed()
    });
    let ops = (knobs.clients * knobs.batches * knobs.batch) as f64;
    (
        ops / elapsed.as_secs_f64(),
        cpu_of(servers).saturating_sub(cpu_before),
    )
}

/// A device of the 1,000-tenant run.
struct Device {
    tenant: TenantId,
    id: RowId,
    token: String,
    base: String,
    /// The last sequence number pulled.
    cursor: AtomicU64,
    /// Requests made; even: push next, odd: pull.
    turns: AtomicU64,
}

/// One step of the ramp.
struct Step {
    offered: f64,
    achieved: f64,
    requests: usize,
    failed: usize,
    p50: Duration,
    p95: Duration,
    p99: Duration,
    cpu: Duration,
}

impl Step {
    /// p95 under the bound, at most 1% failed, and at least 95% of the offered rate served:
    /// a step too short for its queue to push p95 over still shows it in the rate served.
    fn held(&self) -> bool {
        self.p95 < P95_BOUND
            && self.failed * 100 <= self.requests
            && self.achieved >= 0.95 * self.offered
    }

    fn print(&self) {
        println!(
            "  offered {:>8.0} req/s  achieved {:>8.0} req/s  p50 {:>7.1} ms  p95 {:>7.1} ms  \
             p99 {:>7.1} ms  failed {:>5}/{:<6}  servers' CPU {:>5.1} s  {}",
            self.offered,
            self.achieved,
            ms(self.p50),
            ms(self.p95),
            ms(self.p99),
            self.failed,
            self.requests,
            self.cpu.as_secs_f64(),
            if self.held() { "held" } else { "did not hold" }
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

#[derive(serde::Deserialize)]
struct Page {
    operations: Vec<Pulled>,
}

#[derive(serde::Deserialize)]
struct Pulled {
    seq: u64,
}

/// One request of a device: a push of a sale's operations or a pull after its cursor.
async fn turn(client: &reqwest::Client, device: &Device, counter: &AtomicU64) -> bool {
    if device
        .turns
        .fetch_add(1, Ordering::Relaxed)
        .is_multiple_of(2)
    {
        let body = push_body(&device.tenant, device.id, counter, SALE_OPS);
        return push(client, &device.base, &device.tenant, &device.token, body).await;
    }
    let after = device.cursor.load(Ordering::Relaxed);
    let sent = client
        .get(format!(
            "{}/v1/tenants/{}/operations?after={after}&limit=100",
            device.base, device.tenant
        ))
        .bearer_auth(&device.token)
        .send()
        .await;
    let Ok(answer) = sent else { return false };
    if !answer.status().is_success() {
        return false;
    }
    let Ok(page) = answer.json::<Page>().await else {
        return false;
    };
    if let Some(last) = page.operations.last() {
        device.cursor.fetch_max(last.seq, Ordering::Relaxed);
    }
    true
}

/// The `q` quantile of sorted latencies.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Measure 2, one step: requests due every 1/`rate` s for the step's length, device after
/// device, each timed from when it was due.
fn step(
    rt: &tokio::runtime::Runtime,
    knobs: &Knobs,
    servers: &[Server],
    devices: &Arc<Vec<Device>>,
    next: &AtomicUsize,
    counter: &Arc<AtomicU64>,
    rate: f64,
) -> Step {
    let client = http_client();
    let due = (rate * knobs.step.as_secs_f64()).round().max(1.0) as usize;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(due)));
    let failed = Arc::new(AtomicUsize::new(0));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let cpu_before = cpu_of(servers);
    let elapsed = rt.block_on(async {
        let started = tokio::time::Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..due {
            let at = started + interval.mul_f64(i as f64);
            tokio::time::sleep_until(at).await;
            if in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
                failed.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            in_flight.fetch_add(1, Ordering::Relaxed);
            let d = next.fetch_add(1, Ordering::Relaxed) % devices.len();
            let (client, devices, counter) =
                (client.clone(), Arc::clone(devices), Arc::clone(counter));
            let (latencies, failed, in_flight) = (
                Arc::clone(&latencies),
                Arc::clone(&failed),
                Arc::clone(&in_flight),
            );
            tasks.spawn(async move {
                let ok = turn(&client, &devices[d], &counter).await;
                let took = at.elapsed();
                in_flight.fetch_sub(1, Ordering::Relaxed);
                if ok {
                    latencies
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(took);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            });
            // Finished tasks let go of their memory as the step goes on.
            while tasks.try_join_next().is_some() {}
        }
        while tasks.join_next().await.is_some() {}
        started.elapsed()
    });
    let mut sorted = std::mem::take(
        &mut *latencies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    sorted.sort_unstable();
    Step {
        offered: rate,
        achieved: sorted.len() as f64 / elapsed.as_secs_f64(),
        requests: due,
        failed: failed.load(Ordering::Relaxed),
        p50: quantile(&sorted, 0.50),
        p95: quantile(&sorted, 0.95),
        p99: quantile(&sorted, 0.99),
        cpu: cpu_of(servers).saturating_sub(cpu_before),
    }
}

fn main() {
    let knobs = Knobs::read();
    let Some(cluster) = PgCluster::start_with(PgOptions {
        durable: knobs.durable,
        ..PgOptions::default()
    }) else {
        println!("central_pg: skipped, PostgreSQL is not installed (see above)");
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, SECRET).expect("the secret file");
    let log = |name: &str| -> PathBuf { dir.path().join(format!("{name}.log")) };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let pool = knobs.pool.to_string();
    println!(
        "central_pg: load {} at start; PostgreSQL {}; pool {} per process",
        load(),
        if knobs.durable {
            "durable (fsync on)"
        } else {
            "with fsync off"
        },
        knobs.pool
    );

    // 1. Push throughput.
    println!(
        "push throughput: {} clients (one tenant each) x {} batches of {} operations",
        knobs.clients, knobs.batches, knobs.batch
    );
    let sqlite_file = dir.path().join("central.db");
    let sqlite_tenants = add_tenants(
        &SqliteCentral::open(&sqlite_file).expect("the SQLite store"),
        knobs.clients,
    );
    let sqlite_path = sqlite_file.to_str().expect("a UTF-8 path");
    let sqlite = [Server::start(
        &["--db", sqlite_path],
        &secret,
        &log("sqlite"),
    )];
    let (on_sqlite, sqlite_cpu) = push_throughput(&rt, &knobs, &sqlite, &sqlite_tenants);
    drop(sqlite);
    let pg_run = |processes: usize| -> (f64, Duration) {
        let url = cluster.fresh_database();
        let store = PgCentral::connect(&url, 1).expect("PgCentral");
        let tenants = add_tenants(&store, knobs.clients);
        drop(store);
        let servers: Vec<Server> = (0..processes)
            .map(|p| {
                Server::start(
                    &["--database-url", &url, "--pool-size", &pool],
                    &secret,
                    &log(&format!("pg-push-{processes}-{p}")),
                )
            })
            .collect();
        push_throughput(&rt, &knobs, &servers, &tenants)
    };
    let (on_pg1, pg1_cpu) = pg_run(1);
    let (on_pg2, pg2_cpu) = pg_run(2);
    for (name, ops, cpu) in [
        ("SQLite, 1 process", on_sqlite, sqlite_cpu),
        ("PostgreSQL, 1 process", on_pg1, pg1_cpu),
        ("PostgreSQL, 2 processes", on_pg2, pg2_cpu),
    ] {
        println!(
            "  {name:<24} {ops:>9.0} operations/s  (servers' CPU {:.1} s)",
            cpu.as_secs_f64()
        );
    }
    println!(
        "  ratios: PostgreSQL 1 process / SQLite {:.2}x; 2 processes / SQLite {:.2}x; 2 \
         processes / 1 process {:.2}x",
        on_pg1 / on_sqlite,
        on_pg2 / on_sqlite,
        on_pg2 / on_pg1
    );

    // 2. 1,000 tenants with several devices each, at a rising offered rate.
    println!(
        "{} tenants x {} devices on {} PostgreSQL processes: open-loop ramp from {} req/s, +{:.0}% \
         per {} s step, half pushes of {SALE_OPS} operations, half pulls",
        knobs.tenants,
        knobs.devices,
        knobs.processes,
        knobs.start_rate,
        (knobs.growth - 1.0) * 100.0,
        knobs.step.as_secs()
    );
    let url = cluster.fresh_database();
    let store = PgCentral::connect(&url, 1).expect("PgCentral");
    let tenants = add_tenants(&store, knobs.tenants);
    drop(store);
    let servers: Vec<Server> = (0..knobs.processes)
        .map(|p| {
            Server::start(
                &["--database-url", &url, "--pool-size", &pool],
                &secret,
                &log(&format!("pg-ramp-{p}")),
            )
        })
        .collect();
    // Device k of tenant t at index k * tenants + t: consecutive requests go to different
    // tenants, and a tenant's devices to different processes where there are several.
    let devices: Vec<Device> = (0..knobs.devices)
        .flat_map(|k| tenants.iter().map(move |t| (k, t)))
        .enumerate()
        .map(|(i, (_, t))| {
            let id = RowId::new();
            Device {
                tenant: t.clone(),
                id,
                token: token(t, id),
                base: servers[i % servers.len()].base.clone(),
                cursor: AtomicU64::new(0),
                turns: AtomicU64::new(0),
            }
        })
        .collect();
    let devices = Arc::new(devices);
    let next = AtomicUsize::new(0);
    let counter = Arc::new(AtomicU64::new(0));
    let mut rate = knobs.start_rate;
    let mut best: Option<Step> = None;
    let mut failed_at = None;
    while rate <= knobs.max_rate {
        let s = step(&rt, &knobs, &servers, &devices, &next, &counter, rate);
        s.print();
        if !s.held() {
            failed_at = Some(rate);
            break;
        }
        best = Some(s);
        rate *= knobs.growth;
    }
    // Two halvings between the last rate that held and the first that did not: the knee to
    // within a quarter of the last step.
    if let (Some(mut high), Some(mut low)) = (failed_at, best.as_ref().map(|s| s.offered)) {
        println!("  between {low:.0} and {high:.0} req/s:");
        for _ in 0..2 {
            let mid = (low + high) / 2.0;
            let s = step(&rt, &knobs, &servers, &devices, &next, &counter, mid);
            s.print();
            if s.held() {
                low = mid;
                best = Some(s);
            } else {
                high = mid;
            }
        }
    }
    match best {
        Some(s) => println!(
            "  highest rate held (p95 < {} ms, at most 1% failed, 95% served): {:.0} req/s \
             offered, {:.0} req/s served; p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms",
            P95_BOUND.as_millis(),
            s.offered,
            s.achieved,
            ms(s.p50),
            ms(s.p95),
            ms(s.p99)
        ),
        None => println!("  not even the first rate held"),
    }
    println!("central_pg: load {} at the end", load());
    drop(servers);
}
