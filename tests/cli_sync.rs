//! `pos-node sync` as a terminal runs it: the real binary against a real `pos-central` on an
//! ephemeral loopback port. Two node files converge through `--once`; a wrong token, a server
//! that is not listening and a tenant missing from the node each exit 2 naming the tenant and
//! the class, with nothing lost; `--token-dir` syncs every tenant and one failure holds no
//! other back; without `--once` it runs until SIGTERM and stops cleanly, or ends quietly when
//! its reader goes away; a conflict resolved on one node shows resolved on the other. Every
//! wait is bounded; no test asserts a timing.
#![cfg(feature = "server")]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use common::{product, tid};
use pos_tenancy::catalog::Product;
use pos_tenancy::pos::{Checkout, LineItem, Pos, Tender};
use pos_tenancy::{Store, TenantAccess};

const SECRET: &str = "test-secret-that-is-long-enough-for-hs256!";
const CENTRAL: &str = env!("CARGO_BIN_EXE_pos-central");
const NODE: &str = env!("CARGO_BIN_EXE_pos-node");
/// Bounds every wait for something that happens (a line, an exit); never asserted as a time.
const PATIENCE: Duration = Duration::from_secs(60);

/// A child process killed when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A central server with its tenants, and a directory for node files and tokens.
struct Env {
    dir: tempfile::TempDir,
    _server: Running,
    base: String,
}

fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn central(args: &[&str]) -> String {
    let o = run(CENTRAL, args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    stdout(&o).trim().to_owned()
}

fn node(args: &[&str]) -> String {
    let o = run(NODE, args);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
    stdout(&o)
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// The lines of a child's output, read on a thread until the child closes it.
fn lines(stream: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_exit(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "no exit within {PATIENCE:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Env {
    /// A central server holding these tenants.
    fn new(tenants: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("dir");
        let db = path(&dir.path().join("central.db"));
        let secret = dir.path().join("secret");
        std::fs::write(&secret, format!("{SECRET}\n")).expect("secret");
        for t in tenants {
            central(&[
                "tenant", "add", "--db", &db, "--id", t, "--name", t, "--plan", "pro",
            ]);
        }
        let mut child = Command::new(CENTRAL)
            .args([
                "serve",
                "--db",
                &db,
                "--listen",
                "127.0.0.1:0",
                "--secret-file",
            ])
            .arg(&secret)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("pos-central starts");
        let out = child.stdout.take().expect("stdout");
        let server = Running(child);
        let line = lines(out).recv_timeout(PATIENCE).unwrap_or_default();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Self {
            dir,
            _server: server,
            base: format!("http://{addr}"),
        }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A device token for `tenant`, written to `<dir>/<file>`; its path.
    fn token(&self, tenant: &str, dir: &str) -> String {
        let token = central(&[
            "token",
            "issue",
            "--db",
            &path(&self.file("central.db")),
            "--secret-file",
            &path(&self.file("secret")),
            "--tenant",
            tenant,
            "--device",
            "till",
            "--ttl",
            "1h",
        ]);
        let dir = self.file(dir);
        std::fs::create_dir_all(&dir).expect("token dir");
        let file = dir.join(format!("{tenant}.token"));
        std::fs::write(&file, format!("{token}\n")).expect("token file");
        path(&file)
    }

    /// A node file holding these tenants; its path.
    fn node(&self, name: &str, tenants: &[&str]) -> String {
        let db = path(&self.file(name));
        node(&["init", "--db", &db]);
        for t in tenants {
            node(&[
                "tenant", "add", "--db", &db, "--id", t, "--name", t, "--plan", "pro",
            ]);
        }
        db
    }

    /// `pos-node sync --once` of one tenant with a token file.
    fn sync_once(&self, db: &str, tenant: &str, token: &str) -> Output {
        run(
            NODE,
            &[
                "sync",
                "--db",
                db,
                "--server",
                &self.base,
                "--tenant",
                tenant,
                "--token-file",
                token,
                "--once",
            ],
        )
    }
}

fn synced(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(0), "sync --once: {}", stderr(o));
    stdout(o)
}

/// The node's status of a tenant, as JSON.
fn status(db: &str, tenant: &str) -> serde_json::Value {
    let o = run(NODE, &["status", "--db", db, "--tenant", tenant, "--json"]);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "status: {}",
        stderr(&o)
    );
    json(&stdout(&o))[0].clone()
}

fn pending(db: &str, tenant: &str) -> u64 {
    status(db, tenant)["pending"].as_u64().expect("pending")
}

#[test]
fn a_product_made_on_one_node_appears_on_the_other_after_both_sync_once() {
    let env = Env::new(&["caps"]);
    let token = env.token("caps", "tokens");
    let (a, b) = (env.node("a.db", &["caps"]), env.node("b.db", &["caps"]));
    let oil = product("OF-1", 1299);
    {
        let store = Store::open(&a).expect("a");
        let caps = store.tenant(&tid("caps")).expect("caps");
        let admin = caps.bootstrap_admin("owner", "Owner").expect("admin");
        caps.insert(&admin, &oil).expect("product");
    }
    let before = pending(&a, "caps");
    assert!(before >= 2);
    let text = synced(&env.sync_once(&a, "caps", &token));
    assert!(
        text.starts_with(&format!("caps: pushed {before}, ")),
        "{text}"
    );
    let line = json(&synced(&run(
        NODE,
        &[
            "sync",
            "--db",
            &b,
            "--server",
            &env.base,
            "--tenant",
            "caps",
            "--token-file",
            &token,
            "--once",
            "--json",
        ],
    )));
    assert_eq!(line["event"], "round");
    assert_eq!(line["tenant"], "caps");
    assert_eq!(line["applied"], before);
    assert_eq!(line["cursor"], line["server_high"]);

    let store = Store::open(&b).expect("b");
    let got = store
        .tenant(&tid("caps"))
        .expect("caps")
        .fetch::<Product>(oil.id)
        .expect("the product reached b");
    assert_eq!(got.sku, "OF-1");
    for db in [&a, &b] {
        let o = run(NODE, &["status", "--db", db]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(
            stdout(&o).contains("caps: online, in step"),
            "{}",
            stdout(&o)
        );
        let s = status(db, "caps");
        assert_eq!(s["pending"], 0);
        assert_eq!(s["cursor"], s["server_high"]);
        assert_eq!(s["online"], true);
    }
}

#[test]
fn a_wrong_token_exits_2_naming_the_tenant_and_the_auth_class() {
    let env = Env::new(&["caps"]);
    let a = env.node("a.db", &["caps"]);
    {
        let store = Store::open(&a).expect("a");
        let caps = store.tenant(&tid("caps")).expect("caps");
        caps.bootstrap_admin("owner", "Owner").expect("admin");
    }
    let bad = env.file("bad.token");
    std::fs::write(&bad, "not-a-token\n").expect("token");
    let before = pending(&a, "caps");
    let o = env.sync_once(&a, "caps", &path(&bad));
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.starts_with("pos-node: error: tenant caps: push failed (auth)"),
        "{err}"
    );
    assert!(
        err.contains("what to do:") && err.contains("token"),
        "{err}"
    );
    assert_eq!(pending(&a, "caps"), before, "nothing left the outbox");
    let s = status(&a, "caps");
    assert_eq!(s["last_error"]["class"], "auth");
    let o = run(NODE, &["status", "--db", &a]);
    assert_eq!(o.status.code(), Some(1), "an error is a problem to report");

    // A token file that is missing is an auth failure of that tenant too.
    let missing = env.file("missing.token");
    let o = env.sync_once(&a, "caps", &path(&missing));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("tenant caps") && stderr(&o).contains("(auth)"));
}

#[test]
fn a_server_not_listening_exits_2_transient_with_the_pending_count_unchanged() {
    let env = Env::new(&["caps"]);
    let token = env.token("caps", "tokens");
    let a = env.node("a.db", &["caps"]);
    {
        let store = Store::open(&a).expect("a");
        let caps = store.tenant(&tid("caps")).expect("caps");
        let admin = caps.bootstrap_admin("owner", "Owner").expect("admin");
        caps.insert(&admin, &product("OF-1", 1299))
            .expect("product");
    }
    let before = pending(&a, "caps");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let o = run(
        NODE,
        &[
            "sync",
            "--db",
            &a,
            "--server",
            &format!("http://127.0.0.1:{port}"),
            "--tenant",
            "caps",
            "--token-file",
            &token,
            "--once",
            "--json",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("tenant caps: push failed (transient)"),
        "{err}"
    );
    // Nothing retries after --once exits, and the hint says so.
    assert!(err.contains("run it again"), "{err}");
    let line = json(stdout(&o).trim());
    assert_eq!(line["event"], "error");
    assert_eq!(line["tenant"], "caps");
    assert_eq!(line["class"], "transient");
    assert_eq!(line["step"], "push");
    assert_eq!(pending(&a, "caps"), before);
    assert_eq!(status(&a, "caps")["online"], false);
    // The server comes back (here: the real one): everything goes.
    synced(&env.sync_once(&a, "caps", &token));
    assert_eq!(pending(&a, "caps"), 0);
}

#[test]
fn a_token_dir_syncs_every_tenant_and_one_failure_holds_no_other_back() {
    let env = Env::new(&["caps", "bolt"]);
    env.token("caps", "tokens");
    env.token("bolt", "tokens");
    // bolt's token is replaced by a bad one; ghost has a token but is not on the node.
    std::fs::write(env.file("tokens").join("bolt.token"), "bad\n").expect("token");
    std::fs::write(env.file("tokens").join("ghost.token"), "x\n").expect("token");
    std::fs::write(env.file("tokens").join("README"), "not a token\n").expect("file");
    let a = env.node("a.db", &["caps", "bolt"]);
    {
        let store = Store::open(&a).expect("a");
        for t in ["caps", "bolt"] {
            let h = store.tenant(&tid(t)).expect("tenant");
            let admin = h.bootstrap_admin("owner", "Owner").expect("admin");
            h.insert(&admin, &product("OF-1", 1299)).expect("product");
        }
    }
    let bolt_before = pending(&a, "bolt");
    let dir = path(&env.file("tokens"));
    let o = run(
        NODE,
        &[
            "sync",
            "--db",
            &a,
            "--server",
            &env.base,
            "--token-dir",
            &dir,
            "--once",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("tenant bolt: push failed (auth)"), "{err}");
    assert!(
        err.contains("tenant ghost") && err.contains("pos-node tenant add"),
        "{err}"
    );
    assert!(!err.contains("tenant caps"), "{err}");
    assert!(stdout(&o).contains("caps: pushed"), "{}", stdout(&o));
    assert_eq!(pending(&a, "caps"), 0, "caps synced despite bolt");
    assert_eq!(pending(&a, "bolt"), bolt_before);

    // A directory with no token at all is a usage error.
    std::fs::create_dir_all(env.file("empty")).expect("dir");
    let o = run(
        NODE,
        &[
            "sync",
            "--db",
            &a,
            "--server",
            &env.base,
            "--token-dir",
            &path(&env.file("empty")),
            "--once",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no <tenant>.token file"),
        "{}",
        stderr(&o)
    );
}

/// Starts `pos-node sync` without `--once`, JSON lines on a channel.
fn daemon(env: &Env, db: &str, token: &str) -> (Running, Receiver<String>) {
    let mut child = Command::new(NODE)
        .args([
            "sync",
            "--db",
            db,
            "--server",
            &env.base,
            "--tenant",
            "caps",
            "--token-file",
            token,
            "--interval",
            "1",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("pos-node sync starts");
    let out = lines(child.stdout.take().expect("stdout"));
    (Running(child), out)
}

/// Waits for a JSON line whose `event` is `event`, at most [`PATIENCE`]; it and the lines
/// before it.
fn wait_event(rx: &Receiver<String>, event: &str) -> (serde_json::Value, Vec<String>) {
    let deadline = Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Ok(line) = rx.recv_timeout(left) else {
            break;
        };
        let value = json(&line);
        seen.push(line);
        if value["event"] == event {
            return (value, seen);
        }
    }
    panic!("no {event} event: {seen:?}");
}

#[cfg(unix)]
#[test]
fn without_once_it_syncs_each_round_until_sigterm_and_stops_cleanly() {
    let env = Env::new(&["caps"]);
    let token = env.token("caps", "tokens");
    let (a, b) = (env.node("a.db", &["caps"]), env.node("b.db", &["caps"]));
    let (mut running, rx) = daemon(&env, &b, &token);
    let (first, _) = wait_event(&rx, "round");
    assert_eq!(first["tenant"], "caps");
    // Work made elsewhere while it runs arrives by itself, with no command.
    let oil = product("OF-1", 1299);
    {
        let store = Store::open(&a).expect("a");
        let caps = store.tenant(&tid("caps")).expect("caps");
        let admin = caps.bootstrap_admin("owner", "Owner").expect("admin");
        caps.insert(&admin, &oil).expect("product");
    }
    synced(&env.sync_once(&a, "caps", &token));
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (round, _) = wait_event(&rx, "round");
        if round["applied"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the product never arrived");
    }
    let store = Store::open(&b).expect("b");
    assert!(store
        .tenant(&tid("caps"))
        .expect("caps")
        .get::<Product>(oil.id)
        .expect("read")
        .is_some());
    drop(store);

    let pid = running.0.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = wait_exit(&mut running.0);
    assert_eq!(status.code(), Some(0), "a clean stop");
    let (stopped, _) = wait_event(&rx, "stopped");
    assert_eq!(stopped["event"], "stopped");
    assert_eq!(pending(&b, "caps"), 0);
}

#[test]
fn without_once_it_ends_quietly_when_its_reader_goes_away() {
    let env = Env::new(&["caps"]);
    let token = env.token("caps", "tokens");
    let a = env.node("a.db", &["caps"]);
    let mut child = Command::new(NODE)
        .args([
            "sync",
            "--db",
            &a,
            "--server",
            &env.base,
            "--tenant",
            "caps",
            "--token-file",
            &token,
            "--interval",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pos-node sync starts");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    out.read_line(&mut first).expect("a line");
    assert!(first.starts_with("caps: pushed 0, pulled 0"), "{first}");
    // `| head -1`: the reader is gone; the next round's line ends the command.
    drop(out);
    let mut running = Running(child);
    let status = wait_exit(&mut running.0);
    assert_eq!(status.code(), Some(0));
    let mut err = String::new();
    if let Some(mut e) = running.0.stderr.take() {
        e.read_to_string(&mut err).expect("stderr");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_conflict_resolved_with_the_cli_on_one_node_shows_resolved_on_the_other() {
    let env = Env::new(&["caps"]);
    let token = env.token("caps", "tokens");
    let (a, b) = (env.node("a.db", &["caps"]), env.node("b.db", &["caps"]));
    let oil = product("OF-1", 1299);
    let admin = {
        let store = Store::open(&a).expect("a");
        let caps = store.tenant(&tid("caps")).expect("caps");
        let admin = caps.bootstrap_admin("owner", "Owner").expect("admin");
        caps.insert(&admin, &oil).expect("product");
        caps.receive_stock(&admin, oil.id, "main", 1_000, None)
            .expect("stock");
        admin.user_id()
    };
    synced(&env.sync_once(&a, "caps", &token));
    synced(&env.sync_once(&b, "caps", &token));
    // Both sell the last unit offline.
    for db in [&a, &b] {
        let store = Store::open(db).expect("node");
        let caps = store.tenant(&tid("caps")).expect("caps");
        let actor = caps.actor(admin).expect("actor");
        caps.checkout(
            &actor,
            &Checkout::new()
                .line(LineItem::product(oil.id, 1_000))
                .tender(Tender::Cash {
                    tendered_minor: 100_000,
                }),
        )
        .expect("sale");
    }
    for db in [&a, &b, &a] {
        synced(&env.sync_once(db, "caps", &token));
    }
    let open = json(&node(&[
        "conflicts",
        "list",
        "--db",
        &b,
        "--tenant",
        "caps",
        "--open",
        "--json",
    ]));
    assert_eq!(open.as_array().map(Vec::len), Some(1), "{open}");
    let id = open[0]["id"].as_str().expect("id").to_owned();
    node(&[
        "conflicts",
        "resolve",
        "--db",
        &b,
        "--tenant",
        "caps",
        "--id",
        &id,
        "--as",
        "owner",
        "--resolution",
        "both sales stand; stock recounted",
    ]);
    assert_eq!(status(&a, "caps")["open_conflicts"], 1);
    synced(&env.sync_once(&b, "caps", &token));
    synced(&env.sync_once(&a, "caps", &token));
    let all = json(&node(&[
        "conflicts",
        "list",
        "--db",
        &a,
        "--tenant",
        "caps",
        "--json",
    ]));
    let row = all
        .as_array()
        .and_then(|v| v.iter().find(|c| c["id"] == id.as_str()))
        .expect("the conflict on a");
    assert_eq!(row["resolution"], "both sales stand; stock recounted");
    assert_eq!(row["resolved_by"], admin.to_string());
    assert_eq!(status(&a, "caps")["open_conflicts"], 0);
    assert_eq!(
        json(&node(&[
            "conflicts",
            "list",
            "--db",
            &a,
            "--tenant",
            "caps",
            "--open",
            "--json"
        ])),
        json("[]")
    );
}

#[test]
fn a_new_terminal_joins_a_tenant_with_its_token_alone_and_can_sell_at_once() {
    let env = Env::new(&["caps"]);
    let token = env.token("caps", "tokens");
    let a = env.node("a.db", &["caps"]);
    let oil = product("OF-1", 1299);
    {
        let store = Store::open(&a).expect("a");
        let caps = store.tenant(&tid("caps")).expect("caps");
        let admin = caps.bootstrap_admin("owner", "Owner").expect("admin");
        caps.insert(&admin, &oil).expect("product");
    }
    synced(&env.sync_once(&a, "caps", &token));
    // A fresh node that has never heard of the tenant.
    let b = path(&env.file("b.db"));
    node(&["init", "--db", &b]);
    let refused = env.sync_once(&b, "caps", &token);
    assert_eq!(refused.status.code(), Some(2));
    assert!(stderr(&refused).contains("--join"), "{}", stderr(&refused));
    let joined = run(
        NODE,
        &[
            "sync",
            "--db",
            &b,
            "--server",
            &env.base,
            "--tenant",
            "caps",
            "--token-file",
            &token,
            "--once",
            "--join",
            "--json",
        ],
    );
    let lines: Vec<serde_json::Value> = synced(&joined).lines().map(json).collect();
    assert_eq!(lines.len(), 1, "one round for the joined tenant: {lines:?}");
    assert_eq!(lines[0]["event"], "round");
    assert_eq!(lines[0]["cursor"], lines[0]["server_high"]);

    let store = Store::open(&b).expect("b");
    let caps = store.tenant(&tid("caps")).expect("the tenant was added");
    let info = caps.info().expect("info");
    assert_eq!(info.name, "caps");
    assert_eq!(info.plan.to_string(), "pro");
    assert_eq!(caps.fetch::<Product>(oil.id).expect("product").sku, "OF-1");
    // It can sell: the admin made on terminal a signs in here.
    let admin = caps
        .list::<pos_tenancy::catalog::User>(&pos_tenancy::ListQuery::new())
        .expect("users")
        .rows;
    assert_eq!(admin.len(), 1);
    let actor = caps.actor(admin[0].id).expect("the admin acts here");
    caps.insert(&actor, &product("AF-2", 2599))
        .expect("a write on the joined terminal");
    assert!(pending(&b, "caps") >= 1);
}
