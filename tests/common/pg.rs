//! A throwaway PostgreSQL cluster for the tests: the distribution's `initdb` and `pg_ctl`, a
//! temporary directory, a free port on 127.0.0.1; stopped and removed when dropped (also when
//! the test panics). Nothing is installed or started by hand.
//!
//! Where PostgreSQL is not installed, [`PgCluster::start`] says so and why, and the test skips;
//! with `POS_REQUIRE_POSTGRES=1` (as `.ci/run` sets) it fails instead.
//!
//! [`PgOptions`] starts one that takes only TLS connections over TCP (a CA and a server
//! certificate made here with rcgen), or one that syncs its commits to disk (for benches).
//! The benches include this file too (`#[path]`), so it holds nothing test-only.
#![allow(dead_code)]

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

/// The role the stores serve as: neither a superuser nor allowed to bypass row-level security,
/// and with no right to change the schema (it reads and writes the tables the owner granted).
pub const APP_ROLE: &str = "pos_app";

/// The role that owns the databases and migrates them (`pos-central migrate`): not a
/// superuser either.
pub const OWNER_ROLE: &str = "pos_owner";

/// The grants a database's owner gives the serving role, as the README says, before migrating:
/// every table the owner creates from then on can be read and written, none changed in shape.
const GRANTS: &str = "
    ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE ON TABLES TO pos_app;
    REVOKE CREATE ON SCHEMA public FROM PUBLIC;
    GRANT USAGE ON SCHEMA public TO pos_app;";

/// How a cluster is started; the default is the tests' own: plain TCP, nothing synced.
#[derive(Debug, Clone, Copy, Default)]
pub struct PgOptions {
    /// TLS on, and TCP connections without it refused (`hostssl` only in `pg_hba.conf`): the
    /// server's certificate, for `localhost` only, is signed by a CA made at start
    /// ([`PgCluster::ca`]). The cluster's own connection strings say `sslmode=require`.
    pub tls: bool,
    /// Commits synced to disk as a production server does (`fsync` and `synchronous_commit`
    /// on): for benches. Tests leave it off, which is faster and loses nothing unless the
    /// machine itself stops.
    pub durable: bool,
}

/// A running cluster, removed on drop.
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// Run the server's tools as the `postgres` user: `initdb` refuses to run as root.
    as_postgres: bool,
    databases: AtomicUsize,
    tls: bool,
}

/// Where the server's tools are: `POS_PG_BIN`, else the newest `/usr/lib/postgresql/*/bin`
/// holding `initdb` (Debian's layout).
fn find_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("POS_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    // Bound and let go: the port is free now, and the cluster takes it a moment later.
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

fn check(what: &str, out: std::io::Result<Output>) {
    let out = out.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PgCluster {
    /// Starts a cluster, or `None` (after saying why) where PostgreSQL is not installed and
    /// `POS_REQUIRE_POSTGRES` is not `1`.
    pub fn start() -> Option<Self> {
        Self::start_with(PgOptions::default())
    }

    /// [`start`](Self::start), as `options` say.
    pub fn start_with(options: PgOptions) -> Option<Self> {
        let Some(bin) = find_bin().filter(|b| b.join("pg_ctl").is_file()) else {
            let why = "PostgreSQL's initdb and pg_ctl were not found (looked in POS_PG_BIN and \
                       /usr/lib/postgresql/*/bin; `apt-get install postgresql` provides them)";
            if std::env::var("POS_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!("POS_REQUIRE_POSTGRES=1 but {why}");
            }
            // Straight to stderr, not eprintln!: the test harness hides what a passing test
            // prints with the macros, and a skip should be seen.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: this PostgreSQL test did not run: {why}"
            );
            return None;
        };
        let as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("pos-pg-")
            .tempdir()
            .expect("a temporary directory");
        if as_postgres {
            check(
                "chown of the cluster's directory to postgres",
                Command::new("chown")
                    .args(["postgres:postgres"])
                    .arg(dir.path())
                    .output(),
            );
        }
        let cluster = PgCluster {
            dir,
            bin,
            port: free_port(),
            as_postgres,
            databases: AtomicUsize::new(0),
            tls: options.tls,
        };
        check(
            "initdb",
            cluster
                .tool("initdb")
                .arg("-D")
                .arg(cluster.data())
                .args([
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--no-sync",
                    "-E",
                    "UTF8",
                    "--locale=C",
                ])
                .output(),
        );
        let mut server_options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            cluster.port,
            cluster.dir.path().display()
        );
        if !options.durable {
            server_options.push_str(" -c fsync=off");
        }
        if options.tls {
            cluster.make_certificates();
            server_options
                .push_str(" -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key");
        }
        check(
            "pg_ctl start",
            cluster
                .tool("pg_ctl")
                .arg("-D")
                .arg(cluster.data())
                .arg("-l")
                .arg(cluster.dir.path().join("server.log"))
                .args(["-w", "-o", &server_options, "start"])
                .output(),
        );
        let mut admin = cluster.admin();
        admin
            .batch_execute(&format!(
                "CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
                 CREATE ROLE {OWNER_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"
            ))
            .expect("the serving and owning roles");
        Some(cluster)
    }

    /// The server's certificate and key in the data directory, signed by a new CA whose
    /// certificate is [`ca`](Self::ca) (and another CA, [`other_ca`](Self::other_ca), that
    /// signed nothing); `pg_hba.conf` then takes TCP connections only with TLS (the cluster's
    /// own come through its socket).
    fn make_certificates(&self) {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca = |name: &str| {
            let key = KeyPair::generate().expect("a CA key");
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.distinguished_name.push(DnType::CommonName, name);
            let cert = params.self_signed(&key).expect("a CA certificate");
            (cert.pem(), Issuer::new(params, key))
        };
        let (ca_pem, issuer) = ca("pos-tenancy test CA");
        let (other_pem, _) = ca("pos-tenancy unrelated CA");
        let key = KeyPair::generate().expect("a server key");
        let params = CertificateParams::new(vec!["localhost".to_owned()]).expect("server params");
        let cert = params
            .signed_by(&key, &issuer)
            .expect("a server certificate");
        std::fs::write(self.ca().expect("TLS is on"), ca_pem).expect("the CA's certificate");
        std::fs::write(self.dir.path().join("other-ca.pem"), other_pem).expect("another CA");
        let data = self.data();
        std::fs::write(data.join("server.crt"), cert.pem()).expect("the server certificate");
        let key_file = data.join("server.key");
        std::fs::write(&key_file, key.serialize_pem()).expect("the server key");
        // PostgreSQL refuses a key others may read.
        std::fs::set_permissions(
            &key_file,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .expect("the key's mode");
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
        )
        .expect("pg_hba.conf");
        if self.as_postgres {
            check(
                "chown of the certificate files to postgres",
                Command::new("chown")
                    .args(["postgres:postgres"])
                    .arg(data.join("server.crt"))
                    .arg(&key_file)
                    .arg(data.join("pg_hba.conf"))
                    .output(),
            );
        }
    }

    /// The PEM certificate of the CA that signed the server's certificate, with
    /// [`PgOptions::tls`].
    pub fn ca(&self) -> Option<PathBuf> {
        self.tls.then(|| self.dir.path().join("ca.pem"))
    }

    /// The PEM certificate of a CA that signed nothing of this cluster's, with
    /// [`PgOptions::tls`].
    pub fn other_ca(&self) -> Option<PathBuf> {
        self.tls.then(|| self.dir.path().join("other-ca.pem"))
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster the tests of this process running now share (each takes its own
    /// [`fresh_database`](Self::fresh_database)), started by the first of them; stopped and
    /// removed once the last lets go of it, so none outlives the tests (a `static` would never
    /// be dropped). `None`, after saying why, as for [`start`](Self::start).
    pub fn shared() -> Option<Arc<Self>> {
        Self::shared_with(false)
    }

    /// [`shared`](Self::shared), among the tests that need a cluster with [`PgOptions::tls`].
    pub fn shared_tls() -> Option<Arc<Self>> {
        Self::shared_with(true)
    }

    fn shared_with(tls: bool) -> Option<Arc<Self>> {
        static SHARED: [Mutex<Weak<PgCluster>>; 2] =
            [Mutex::new(Weak::new()), Mutex::new(Weak::new())];
        let mut shared = SHARED[usize::from(tls)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(cluster) = shared.upgrade() {
            return Some(cluster);
        }
        let options = PgOptions {
            tls,
            ..PgOptions::default()
        };
        let cluster = Arc::new(Self::start_with(options)?);
        *shared = Arc::downgrade(&cluster);
        Some(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn tool(&self, name: &str) -> Command {
        let path = self.bin.join(name);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    /// A connection string for `user` to `db` over TCP (with TLS, unchecked, if the cluster
    /// has it).
    pub fn url(&self, user: &str, db: &str) -> String {
        let tls = if self.tls { "?sslmode=require" } else { "" };
        format!("postgres://{user}@127.0.0.1:{}/{db}{tls}", self.port)
    }

    /// A connection for `user` to `db` through the cluster's socket, which needs no TLS.
    fn local(&self, user: &str, db: &str) -> postgres::Client {
        postgres::Config::new()
            .host_path(self.dir.path())
            .port(self.port)
            .user(user)
            .dbname(db)
            .connect(postgres::NoTls)
            .unwrap_or_else(|e| panic!("a connection as {user} to {db} through the socket: {e}"))
    }

    /// A connection as the superuser, to the `postgres` database.
    pub fn admin(&self) -> postgres::Client {
        self.local("postgres", "postgres")
    }

    /// A new database owned by [`OWNER_ROLE`], migrated by it, with nothing in its tables;
    /// its connection string for [`APP_ROLE`].
    pub fn fresh_database(&self) -> String {
        let (owner, app) = self.unmigrated_database();
        pos_tenancy::PgCentral::migrate(&owner).expect("the owner migrates");
        app
    }

    /// A new database owned by [`OWNER_ROLE`], with the serving role's grants but no schema
    /// yet: its connection strings for the owner and for [`APP_ROLE`].
    pub fn unmigrated_database(&self) -> (String, String) {
        let n = self.databases.fetch_add(1, Ordering::Relaxed);
        let name = format!("t_{n}");
        self.admin()
            .batch_execute(&format!("CREATE DATABASE {name} OWNER {OWNER_ROLE}"))
            .expect("a fresh database");
        self.local(OWNER_ROLE, &name)
            .batch_execute(GRANTS)
            .expect("the serving role's grants");
        (self.url(OWNER_ROLE, &name), self.url(APP_ROLE, &name))
    }

    /// The cluster's directory (its data and log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // Immediate: nothing in a throwaway cluster needs a clean shutdown. The directory goes
        // with the TempDir after this.
        let stopped = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        if !stopped.is_ok_and(|o| o.status.success()) {
            eprintln!(
                "pg_ctl stop failed for the test cluster in {}",
                self.dir.path().display()
            );
        }
    }
}
