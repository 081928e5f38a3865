//! `pos-central`: the central sync server and its admin commands. Exit codes: 0 ok, 2 error
//! (printed on stderr, prefixed by the program name); `snapshot --all` exits 1 when some
//! tenants failed and others were built. A closed stdout ends the output quietly
//! with the exit code the work decided; any other failed write (a full disk) is exit 2.

#[path = "../common/output.rs"]
mod output;

use std::io::{self, IsTerminal, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use pos_tenancy::protocol::RateLimit;
use pos_tenancy::server::{
    app, issue_token, serve as serve_app, AppState, ServeOptions, ServerError, Stopped,
    BODY_READ_TIMEOUT, DEFAULT_RATE_LIMIT, MAX_TOKEN_TTL,
};
use pos_tenancy::DEFAULT_MAX_SKEW;
use pos_tenancy::{CentralError, CentralStore, CentralTenant, LimitsUpdate, SqliteCentral};
use pos_tenancy::{
    NewTenant, Plan, SettingsError, TenantId, TenantIdError, TenantSettings, TenantStatus,
};
#[cfg(feature = "postgres")]
use pos_tenancy::{PgCentral, DEFAULT_POOL_SIZE, DEFAULT_POOL_WAIT};
use pos_tenancy::{SnapshotError, TenantSnapshots};

/// The central sync server of pos-tenancy: takes each tenant's operations from its nodes and
/// serves them back in one order.
#[derive(Parser)]
#[command(name = "pos-central", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a central database (or migrate an existing one to this version).
    Init {
        /// The central database file.
        #[arg(long)]
        db: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Migrate a central database's schema to this version: a file (as `init`), or with
    /// --database-url a PostgreSQL database, as a role allowed to create tables (its owner).
    /// `serve` and the other commands only check the version, so they can run as a role
    /// without that right.
    Migrate {
        #[command(flatten)]
        db: Database,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Serve the HTTP API until SIGTERM or Ctrl-C.
    Serve(ServeArgs),
    /// Manage the tenants this server serves.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Device tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Build tenants' snapshots now: bring each tenant's shadow node (DIR/TENANT/shadow.db) to
    /// the head of its log and publish its export as the tenant's newest snapshot, which
    /// `serve --snapshots DIR` serves to new terminals. Exit 0 ok, 2 error; with --all, 1 when
    /// some tenants failed and others were built.
    Snapshot(SnapshotArgs),
}

#[derive(Args)]
struct SnapshotArgs {
    #[command(flatten)]
    db: Database,
    /// The snapshots directory (one subdirectory per tenant; made if missing).
    #[arg(long)]
    dir: PathBuf,
    /// The tenant.
    #[arg(long, required_unless_present = "all", conflicts_with = "all")]
    tenant: Option<String>,
    /// Every active tenant (suspended and cancelled ones cannot be pulled, and are left out).
    #[arg(long)]
    all: bool,
    /// Print JSON: an object for --tenant, an array for --all (a failed tenant with "error").
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    db: Database,
    /// Address to listen on (port 0 picks a free one; the address is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:7878")]
    listen: SocketAddr,
    /// File holding the token-signing secret (else the environment variable POS_CENTRAL_SECRET).
    #[arg(long)]
    secret_file: Option<PathBuf>,
    /// Request rate of tenants without one of their own (`tenant limits --rate-limit`):
    /// N/s, N/m or N/h, in bursts of up to N.
    #[arg(long, default_value_t = DEFAULT_RATE_LIMIT)]
    rate_limit: RateLimit,
    /// How far ahead of this server's clock an operation's clock stamp may be (30d, 12h, 15m
    /// or 90s); a batch holding one further ahead is refused whole.
    #[arg(long, default_value_t = Span(DEFAULT_MAX_SKEW))]
    max_skew: Span,
    /// Serve tenants' snapshots from this directory (made by `pos-central snapshot --dir`, or by
    /// --snapshot-every); without it GET /v1/tenants/{tenant}/snapshot answers 404
    /// no_snapshot.
    #[arg(long, value_name = "DIR")]
    snapshots: Option<PathBuf>,
    /// Rebuild snapshots in the background every SECS seconds (or 30d, 12h, 15m, 90s): each
    /// active tenant whose log's head is at least --snapshot-min-ops past its newest snapshot.
    #[arg(long, value_name = "SECS", requires = "snapshots", value_parser = secs_or_span)]
    snapshot_every: Option<Span>,
    /// How many operations a tenant's log must have grown past its newest snapshot for the
    /// background builder to rebuild it.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10_000,
        requires = "snapshot_every"
    )]
    snapshot_min_ops: u64,
    /// Crash tests only (feature `fault-injection`): abort the process right after
    /// committing the Nth push, before answering it.
    #[cfg(feature = "fault-injection")]
    #[arg(long, value_name = "N")]
    fault_abort_after_commit: Option<u64>,
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Register a tenant.
    Add {
        #[command(flatten)]
        db: Database,
        /// Slug.
        #[arg(long)]
        id: String,
        /// Trading name.
        #[arg(long)]
        name: String,
        /// free, pro or enterprise.
        #[arg(long, default_value = "free")]
        plan: Plan,
        /// Override the plan's monthly API calls.
        #[arg(long)]
        max_api_calls: Option<u64>,
        /// The tenant's own request rate (N/s, N/m or N/h); else the server's default.
        #[arg(long)]
        rate_limit: Option<RateLimit>,
        /// Print the tenant as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List every tenant.
    List {
        #[command(flatten)]
        db: Database,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Show one tenant.
    Show(Target),
    /// Suspend a tenant: its devices can neither push nor pull.
    Suspend(Target),
    /// Make a suspended tenant active again (a cancelled one never is).
    Activate(Target),
    /// Cancel a tenant for good (offboarding): its devices can neither push nor pull, and it
    /// can never be re-activated or suspended; its log stays stored.
    Cancel(Target),
    /// Replace a tenant's white-label settings with a JSON file (the whole settings, as
    /// `tenant show --json` prints them under "settings"); validated first, nothing changes
    /// if they are invalid. Nodes get them from GET /v1/tenants/{tenant}/config.
    Settings {
        #[command(flatten)]
        target: Target,
        /// The settings file, or - for standard input.
        #[arg(long)]
        file: PathBuf,
    },
    /// Move a tenant to another plan, with that plan's default limits (overrides of users
    /// and API calls are dropped; the request rate is kept).
    Plan {
        #[command(flatten)]
        target: Target,
        /// free, pro or enterprise.
        #[arg(long)]
        plan: Plan,
    },
    /// Override a tenant's limits (a negotiated contract, a trial).
    Limits {
        #[command(flatten)]
        target: Target,
        /// Most staff accounts.
        #[arg(long)]
        max_users: Option<u32>,
        /// Most API calls per calendar month.
        #[arg(long)]
        max_api_calls: Option<u64>,
        /// Request rate (N/s, N/m or N/h), or `default` for the server's.
        #[arg(long)]
        rate_limit: Option<String>,
    },
}

#[derive(Args)]
struct Target {
    #[command(flatten)]
    db: Database,
    /// The tenant.
    #[arg(long)]
    id: String,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Print a device token (and nothing else) on stdout.
    Issue {
        /// The central database (the tenant must exist there).
        #[command(flatten)]
        db: Database,
        /// File holding the signing secret (else POS_CENTRAL_SECRET).
        #[arg(long)]
        secret_file: Option<PathBuf>,
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// The device (node id).
        #[arg(long)]
        device: String,
        /// How long it is valid: 30d, 12h, 15m or 90s; from 1s to 365d.
        #[arg(long, default_value = "30d")]
        ttl: String,
    },
}

/// The central database a command works on: a SQLite file (made by `init` or `tenant add`), or
/// with feature `postgres` a PostgreSQL database that several server processes share.
#[derive(Args)]
struct Database {
    /// The central database file.
    #[cfg_attr(
        feature = "postgres",
        arg(
            long,
            required_unless_present = "database_url",
            conflicts_with = "database_url"
        )
    )]
    #[cfg_attr(not(feature = "postgres"), arg(long, required = true))]
    db: Option<PathBuf>,
    /// A PostgreSQL database instead of a file: postgres://USER@HOST:PORT/DB (its schema
    /// migrated by `pos-central migrate`). TLS as libpq's sslmode in it says:
    /// ?sslmode=verify-full checks the server's certificate and name; disable, prefer (the
    /// default), require and verify-ca as in libpq.
    #[cfg(feature = "postgres")]
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// The CA (a PEM file) that signed the PostgreSQL server's certificate, trusted instead of
    /// the system's roots: a private CA, as libpq's sslrootcert.
    #[cfg(feature = "postgres")]
    #[arg(long, value_name = "FILE", requires = "database_url")]
    database_ca: Option<PathBuf>,
    /// Connections to the PostgreSQL database at most, for this process [default: 8].
    #[cfg(feature = "postgres")]
    #[arg(long, value_name = "N", requires = "database_url")]
    pool_size: Option<usize>,
    /// How long a request waits for a free connection when all are in use (30d, 12h, 15m or
    /// 90s); then it answers 503 `busy` with Retry-After [default: 30s].
    #[cfg(feature = "postgres")]
    #[arg(long, value_name = "SPAN", requires = "database_url")]
    pool_wait: Option<Span>,
}

impl Database {
    /// The PostgreSQL store, if one was named.
    #[cfg(feature = "postgres")]
    fn postgres(&self) -> Result<Option<Box<dyn CentralStore>>, CliError> {
        match &self.database_url {
            Some(url) => Ok(Some(Box::new(
                PgCentral::connect_with_ca(
                    url,
                    self.pool_size.unwrap_or(DEFAULT_POOL_SIZE),
                    self.database_ca.as_deref(),
                )?
                .pool_wait(self.pool_wait.map_or(DEFAULT_POOL_WAIT, |s| s.0)),
            ))),
            None => Ok(None),
        }
    }

    #[cfg(not(feature = "postgres"))]
    fn postgres(&self) -> Result<Option<Box<dyn CentralStore>>, CliError> {
        Ok(None)
    }

    fn file(&self) -> Result<&Path, CliError> {
        // clap requires --db where no other database is named.
        self.db.as_deref().ok_or(CliError::NoDatabaseNamed)
    }

    /// An existing central database: commands other than `init` and `tenant add` never create
    /// one, nor turn an empty file into one (a PostgreSQL database is never created either).
    fn open_existing(&self) -> Result<Box<dyn CentralStore>, CliError> {
        if let Some(store) = self.postgres()? {
            return Ok(store);
        }
        Ok(Box::new(open_existing(self.file()?)?))
    }

    /// The central database, a file made if missing.
    fn open(&self) -> Result<Box<dyn CentralStore>, CliError> {
        if let Some(store) = self.postgres()? {
            return Ok(store);
        }
        Ok(Box::new(SqliteCentral::open(self.file()?)?))
    }
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("no central database named: pass --db FILE")]
    NoDatabaseNamed,
    #[error(transparent)]
    Central(#[from] CentralError),
    #[error(transparent)]
    TenantId(#[from] TenantIdError),
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error("invalid settings in {0}: {1}")]
    Settings(String, SettingsError),
    #[error("cannot read {0}: {1}")]
    ReadFile(String, std::io::Error),
    #[error("no signing secret: pass --secret-file FILE or set POS_CENTRAL_SECRET")]
    NoSecret,
    #[error("{flag} {value:?} is not a duration like 30d, 12h, 15m or 90s")]
    Duration { flag: &'static str, value: String },
    #[error(
        "--ttl {0} would issue a token that has already expired; give a lifetime from 1s to {max}d",
        max = MAX_TOKEN_TTL.as_secs() / 86_400
    )]
    ZeroTtl(String),
    #[error(
        "--ttl {0} is longer than a device token may live ({max}d at most; the server refuses \
         tokens valid for longer): issue a new token before this one expires",
        max = MAX_TOKEN_TTL.as_secs() / 86_400
    )]
    LongTtl(String),
    #[error("nothing to change: pass --max-users, --max-api-calls or --rate-limit")]
    NoChange,
    #[error(
        "no database at {0} (create one with `pos-central init --db {0}` or `pos-central tenant \
         add --db {0} ...`)"
    )]
    NoDatabase(String),
    #[error("cannot serve on {0}: {1}")]
    Serve(SocketAddr, std::io::Error),
    #[error("cannot write the output: {0}")]
    Output(io::Error),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("--snapshots {0} is not a directory (snapshots are served from DIR/TENANT/)")]
    SnapshotsNotDir(String),
}

/// Runs `write` on the locked stdout and flushes it; a closed pipe ends the output quietly,
/// any other failure is [`CliError::Output`].
fn print(
    write: impl FnOnce(&mut io::StdoutLock<'static>) -> io::Result<()>,
) -> Result<(), CliError> {
    output::print(write).map_err(CliError::Output)
}

/// Pretty JSON and a newline on `out`.
fn write_json(out: &mut impl Write, value: &impl serde::Serialize) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)
}

/// Opens an existing central database: commands other than `init` and `tenant add` never
/// create one, nor turn an empty file into one.
fn open_existing(db: &Path) -> Result<SqliteCentral, CliError> {
    SqliteCentral::open_existing(db).map_err(|e| match e {
        CentralError::NoDatabase { .. } => CliError::NoDatabase(db.display().to_string()),
        e => e.into(),
    })
}

fn read_secret(file: Option<&Path>) -> Result<Vec<u8>, CliError> {
    let secret = match file {
        Some(f) => std::fs::read(f).map_err(|e| CliError::ReadFile(f.display().to_string(), e))?,
        None => std::env::var("POS_CENTRAL_SECRET")
            .map_err(|_| CliError::NoSecret)?
            .into_bytes(),
    };
    // A trailing newline from `echo secret > file` is not part of the secret.
    let end = secret
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    Ok(secret[..end].to_vec())
}

fn parse_duration(s: &str) -> Option<Duration> {
    let split = s.len().checked_sub(1)?;
    let (n, unit) = s.split_at_checked(split)?;
    let n: u64 = n.parse().ok()?;
    let secs = match unit {
        "d" => n.checked_mul(86_400)?,
        "h" => n.checked_mul(3_600)?,
        "m" => n.checked_mul(60)?,
        "s" => n,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

/// A duration flag: 30d, 12h, 15m or 90s.
#[derive(Debug, Clone, Copy)]
struct Span(Duration);

impl std::str::FromStr for Span {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_duration(s)
            .map(Span)
            .ok_or_else(|| format!("{s:?} is not a duration like 30d, 12h, 15m or 90s"))
    }
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}s", self.0.as_secs())
    }
}

/// `--snapshot-every`: plain seconds, or a span like the other duration flags; not zero.
fn secs_or_span(s: &str) -> Result<Span, String> {
    let span = match s.parse::<u64>() {
        Ok(secs) => Span(Duration::from_secs(secs)),
        Err(_) => s.parse::<Span>()?,
    };
    if span.0.is_zero() {
        return Err("must be at least 1 second".to_owned());
    }
    Ok(span)
}

fn duration(flag: &'static str, value: &str) -> Result<Duration, CliError> {
    parse_duration(value).ok_or_else(|| CliError::Duration {
        flag,
        value: value.to_owned(),
    })
}

/// A token's lifetime: a duration from 1 s to [`MAX_TOKEN_TTL`].
fn token_ttl(value: &str) -> Result<Duration, CliError> {
    let ttl = duration("--ttl", value)?;
    if ttl.is_zero() {
        return Err(CliError::ZeroTtl(value.to_owned()));
    }
    if ttl > MAX_TOKEN_TTL {
        return Err(CliError::LongTtl(value.to_owned()));
    }
    Ok(ttl)
}

/// `tenant show --json`: the tenant, and what it used.
#[derive(serde::Serialize)]
struct Shown<'a> {
    #[serde(flatten)]
    tenant: &'a CentralTenant,
    usage: Usage,
}

/// A tenant's usage, as the roll-out plan's usage table counts it.
#[derive(serde::Serialize)]
struct Usage {
    /// The calendar month (UTC) of `api_calls`, `YYYY-MM`.
    month: String,
    /// API calls counted this month.
    api_calls: u64,
    /// Bytes of its rows in the central store now (`CentralStore::storage_bytes`).
    storage_bytes: u64,
}

fn show(t: &CentralTenant, json: bool) -> Result<(), CliError> {
    print(|out| {
        if json {
            write_json(out, t)
        } else {
            write_line(out, t)
        }
    })
}

/// One tenant on one line; what a tenant typed is escaped so it cannot act on the terminal
/// (the name as `output::printable`, the brand quoted as Rust's `{:?}`).
fn write_line(out: &mut impl Write, t: &CentralTenant) -> io::Result<()> {
    let rate = t
        .rate_limit
        .map_or_else(|| "server default".to_owned(), |r| r.to_string());
    writeln!(
        out,
        "{}\t{}\t{}\t{}\t{} users\t{} API calls/month\trate {}\tbrand {:?}",
        t.id,
        output::printable(&t.name),
        t.status,
        t.plan,
        t.limits.max_users,
        t.limits.max_api_calls_month,
        rate,
        t.settings.brand_name
    )
}

fn read_settings(file: &Path) -> Result<TenantSettings, CliError> {
    let name = file.display().to_string();
    let mut text = String::new();
    let read = if file == Path::new("-") {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(file).map(|t| text = t)
    };
    read.map_err(|e| CliError::ReadFile(name.clone(), e))?;
    TenantSettings::from_json(&text).map_err(|e| CliError::Settings(name, e))
}

fn tenant(cmd: TenantCommand) -> Result<(), CliError> {
    match cmd {
        TenantCommand::Add {
            db,
            id,
            name,
            plan,
            max_api_calls,
            rate_limit,
            json,
        } => {
            let id: TenantId = id.parse()?;
            let overrides = LimitsUpdate {
                max_api_calls_month: max_api_calls,
                rate_limit: rate_limit.map(Some),
                ..LimitsUpdate::default()
            };
            let new = NewTenant::new(id, &name).plan(plan);
            show(&db.open()?.add_tenant_with_limits(&new, &overrides)?, json)
        }
        TenantCommand::List { db, json } => {
            let tenants = db.open_existing()?.tenants()?;
            print(|out| {
                if json {
                    return write_json(out, &tenants);
                }
                tenants.iter().try_for_each(|t| write_line(out, t))
            })
        }
        TenantCommand::Show(t) => {
            let id: TenantId = t.id.parse()?;
            let store = t.db.open_existing()?;
            let tenant = store.tenant(&id)?;
            if !t.json {
                return show(&tenant, false);
            }
            let now = pos_tenancy::Timestamp::now();
            let shown = Shown {
                tenant: &tenant,
                usage: Usage {
                    month: now.as_datetime().format("%Y-%m").to_string(),
                    api_calls: store.api_calls(&id, now)?,
                    storage_bytes: store.storage_bytes(&id)?,
                },
            };
            print(|out| write_json(out, &shown))
        }
        TenantCommand::Suspend(t) => show(
            &t.db
                .open_existing()?
                .set_status(&t.id.parse()?, TenantStatus::Suspended)?,
            t.json,
        ),
        TenantCommand::Activate(t) => show(
            &t.db
                .open_existing()?
                .set_status(&t.id.parse()?, TenantStatus::Active)?,
            t.json,
        ),
        TenantCommand::Cancel(t) => show(
            &t.db
                .open_existing()?
                .set_status(&t.id.parse()?, TenantStatus::Cancelled)?,
            t.json,
        ),
        TenantCommand::Settings { target, file } => {
            // Everything is checked before the database is touched.
            let id: TenantId = target.id.parse()?;
            let settings = read_settings(&file)?;
            show(
                &target.db.open_existing()?.set_settings(&id, &settings)?,
                target.json,
            )
        }
        TenantCommand::Plan { target, plan } => {
            let id: TenantId = target.id.parse()?;
            show(
                &target.db.open_existing()?.set_plan(&id, plan)?,
                target.json,
            )
        }
        TenantCommand::Limits {
            target,
            max_users,
            max_api_calls,
            rate_limit,
        } => {
            let id: TenantId = target.id.parse()?;
            let rate_limit = match rate_limit.as_deref() {
                None => None,
                Some("default") => Some(None),
                Some(r) => Some(Some(r.parse::<RateLimit>().map_err(CentralError::from)?)),
            };
            // Merged with what is stored in the store's one UPDATE, not here.
            let update = LimitsUpdate {
                max_users,
                max_api_calls_month: max_api_calls,
                rate_limit,
            };
            if update.is_empty() {
                return Err(CliError::NoChange);
            }
            show(
                &target.db.open_existing()?.update_limits(&id, &update)?,
                target.json,
            )
        }
    }
}

/// Migrates the named database (`pos-central migrate`).
fn migrate(db: &Database) -> Result<(), CliError> {
    #[cfg(feature = "postgres")]
    if let Some(url) = &db.database_url {
        return Ok(PgCentral::migrate_with_ca(url, db.database_ca.as_deref())?);
    }
    drop(SqliteCentral::open(db.file()?)?);
    Ok(())
}

fn serve(args: ServeArgs) -> Result<(), CliError> {
    let secret = read_secret(args.secret_file.as_deref())?;
    let max_skew = args.max_skew.0;
    // A typo in --db must not start a server on a new, empty database.
    let store: Arc<dyn CentralStore> = Arc::from(args.db.open_existing()?);
    // Nor a file given as --snapshots a server that answers 500 to every joining terminal
    // (a missing directory is fine: it is made by the first build).
    if let Some(dir) = args
        .snapshots
        .as_ref()
        .filter(|d| d.exists() && !d.is_dir())
    {
        return Err(CliError::SnapshotsNotDir(dir.display().to_string()));
    }
    // Let go of only after the runtime below is gone: a PostgreSQL store's clients each block
    // on a small runtime of their own when dropped, which panics inside the server's runtime
    // (where the router, and with it the store, would otherwise be dropped at shutdown).
    let _kept = Arc::clone(&store);
    let mut state = AppState::new(Arc::clone(&store), secret)?
        .rate_limit(args.rate_limit)
        .max_skew(max_skew);
    if let Some(dir) = &args.snapshots {
        state = state.snapshots(TenantSnapshots::new(dir));
    }
    // Dropped when serving ends: the builder stops at its next wait (a build in flight is
    // left to the process's exit; its `.partial` is removed by the next build).
    let _builder = match (&args.snapshots, args.snapshot_every) {
        (Some(dir), Some(every)) => Some(spawn_snapshot_builder(
            Arc::clone(&store),
            TenantSnapshots::new(dir),
            every.0,
            args.snapshot_min_ops,
        )),
        _ => None,
    };
    #[cfg(feature = "fault-injection")]
    let state = match args.fault_abort_after_commit {
        Some(n) => state.abort_after_commit(n),
        None => state,
    };
    let listen = args.listen;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Serve(listen, e))?;
    let served = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| CliError::Serve(listen, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| CliError::Serve(listen, e))?;
        // The one line on stdout: scripts and tests read the port from it. Nobody reading it
        // is no reason to stop serving; a line that cannot be written (a full disk) is.
        print(|out| writeln!(out, "listening on {addr}"))?;
        let options = ServeOptions::default();
        tracing::info!(%addr, rate_limit = %args.rate_limit, max_skew_secs = max_skew.as_secs(),
            header_timeout_secs = options.header_read_timeout.as_secs(),
            body_timeout_secs = BODY_READ_TIMEOUT.as_secs(),
            max_connections = options.max_connections, "pos-central serving");
        // Said on every start, armed or not: the hooks can crash the server on a flag.
        #[cfg(feature = "fault-injection")]
        tracing::warn!(
            "this is a test build (feature fault-injection, with crash hooks); \
             never run it in production"
        );
        let signal = async {
            shutdown_signal().await;
            tracing::info!("shutdown signal received; finishing requests in flight");
        };
        if let Stopped::GraceExpired { connections } =
            serve_app(listener, app(state), options, signal).await
        {
            tracing::warn!(
                grace_secs = options.shutdown_grace.as_secs(),
                connections,
                "requests still in flight after the grace period; exiting without their answers"
            );
        }
        tracing::info!("pos-central stopped");
        Ok(())
    });
    drop(runtime);
    served
}

/// The background snapshot builder of `serve --snapshot-every`: on a thread of its own (builds
/// are SQLite and file work, never for the async runtime's threads), every `every` it rebuilds
/// each active tenant whose log's head is at least `min_ops` past its newest snapshot. Stops
/// when the returned sender is dropped.
fn spawn_snapshot_builder(
    store: Arc<dyn CentralStore>,
    snapshots: TenantSnapshots,
    every: Duration,
    min_ops: u64,
) -> std::sync::mpsc::Sender<()> {
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("snapshot-builder".into())
        .spawn(move || loop {
            build_due_snapshots(&store, &snapshots, min_ops);
            match stopped.recv_timeout(every) {
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                _ => return,
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the snapshot builder; snapshots are not rebuilt");
    }
    stop
}

/// One pass of the background builder; every failure is logged and the pass goes on.
fn build_due_snapshots(store: &Arc<dyn CentralStore>, snapshots: &TenantSnapshots, min_ops: u64) {
    let tenants = match store.tenants() {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "snapshot builder: cannot list tenants");
            return;
        }
    };
    for t in tenants.iter().filter(|t| t.status == TenantStatus::Active) {
        let newest = match snapshots.newest(&t.id) {
            Ok(n) => n.map_or(0, |(info, _)| info.cursor),
            Err(e) => {
                tracing::warn!(tenant = %t.id, error = %e, "snapshot builder: cannot read the newest snapshot");
                continue;
            }
        };
        let head = match store.operations_after(&t.id, newest, 1) {
            Ok(page) => page.high,
            Err(e) => {
                tracing::warn!(tenant = %t.id, error = %e, "snapshot builder: cannot read the log's head");
                continue;
            }
        };
        if head <= newest || head - newest < min_ops {
            continue;
        }
        let started = Instant::now();
        match snapshots.build(Arc::clone(store), &t.id) {
            Ok(info) => tracing::info!(tenant = %t.id, cursor = info.cursor, bytes = info.bytes,
                seconds = started.elapsed().as_secs_f64(), "snapshot built"),
            Err(e @ SnapshotError::Busy { .. }) => {
                tracing::info!(tenant = %t.id, reason = %e, "snapshot left to the other builder")
            }
            Err(e) => tracing::warn!(tenant = %t.id, error = %e, "snapshot build failed"),
        }
    }
}

/// One tenant's snapshot as `pos-central snapshot` reports it.
#[derive(serde::Serialize)]
struct Built {
    tenant: TenantId,
    cursor: u64,
    bytes: u64,
    sha256: String,
    seconds: f64,
}

/// A tenant `snapshot --all` could not build.
#[derive(serde::Serialize)]
struct Failed {
    tenant: TenantId,
    error: String,
}

fn write_built(out: &mut impl Write, b: &Built) -> io::Result<()> {
    writeln!(
        out,
        "{}\tcursor {}\t{} bytes\tsha256 {}\t{:.2} s",
        b.tenant, b.cursor, b.bytes, b.sha256, b.seconds
    )
}

/// `pos-central snapshot`: exit 0, or 1 when --all built some tenants and failed others (the
/// failures said on stderr, or in the JSON); a failure of everything is an error (2).
fn snapshot(args: SnapshotArgs) -> Result<ExitCode, CliError> {
    let one: Option<TenantId> = args.tenant.as_deref().map(str::parse).transpose()?;
    let store: Arc<dyn CentralStore> = Arc::from(args.db.open_existing()?);
    let snapshots = TenantSnapshots::new(&args.dir);
    let build = |id: &TenantId| -> Result<Built, SnapshotError> {
        let started = Instant::now();
        let info = snapshots.build(Arc::clone(&store), id)?;
        Ok(Built {
            tenant: id.clone(),
            cursor: info.cursor,
            bytes: info.bytes,
            sha256: info.sha256,
            seconds: started.elapsed().as_secs_f64(),
        })
    };
    if let Some(id) = one {
        // The tenant's own error (unknown, suspended) rather than a failed pull.
        store.tenant(&id)?;
        let built = build(&id)?;
        print(|out| {
            if args.json {
                write_json(out, &built)
            } else {
                write_built(out, &built)
            }
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    let tenants: Vec<TenantId> = store
        .tenants()?
        .into_iter()
        .filter(|t| t.status == TenantStatus::Active)
        .map(|t| t.id)
        .collect();
    let bar = progress(tenants.len() as u64);
    let (mut built, mut failed) = (Vec::new(), Vec::new());
    for id in &tenants {
        bar.set_message(id.to_string());
        match build(id) {
            Ok(b) => built.push(b),
            Err(e) => failed.push(Failed {
                tenant: id.clone(),
                error: e.to_string(),
            }),
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    for f in &failed {
        let _ = writeln!(
            io::stderr().lock(),
            "pos-central: error: tenant {}: {}",
            f.tenant,
            f.error
        );
    }
    print(|out| {
        if args.json {
            #[derive(serde::Serialize)]
            #[serde(untagged)]
            enum Entry<'a> {
                Built(&'a Built),
                Failed(&'a Failed),
            }
            let entries: Vec<Entry<'_>> = built
                .iter()
                .map(Entry::Built)
                .chain(failed.iter().map(Entry::Failed))
                .collect();
            write_json(out, &entries)
        } else {
            built.iter().try_for_each(|b| write_built(out, b))
        }
    })?;
    Ok(match (built.is_empty(), failed.is_empty()) {
        (_, true) => ExitCode::SUCCESS,
        (false, false) => ExitCode::from(1),
        (true, false) => ExitCode::from(2),
    })
}

/// A bar over the tenants on stderr when it is a terminal; hidden otherwise.
fn progress(len: u64) -> indicatif::ProgressBar {
    if !io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(len),
        indicatif::ProgressDrawTarget::stderr(),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template("snapshots [{bar:30}] {pos}/{len} {msg} {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// SIGTERM or Ctrl-C: stop taking connections, close idle ones, let requests in flight (and
/// their commits) finish within the grace period, then exit.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

fn run(cli: Cli) -> Result<ExitCode, CliError> {
    if let Command::Snapshot(args) = cli.command {
        return snapshot(args);
    }
    run_command(cli.command).map(|()| ExitCode::SUCCESS)
}

fn run_command(command: Command) -> Result<(), CliError> {
    match command {
        Command::Init { db, json } => {
            // Creating is what `init` is for; an existing central database is migrated, another
            // program's is refused untouched.
            drop(SqliteCentral::open(&db)?);
            print(|out| {
                if json {
                    write_json(out, &serde_json::json!({ "db": db.display().to_string() }))
                } else {
                    writeln!(out, "{}: central database ready", db.display())
                }
            })
        }
        Command::Migrate { db, json } => {
            migrate(&db)?;
            print(|out| {
                if json {
                    write_json(out, &serde_json::json!({ "schema": "migrated" }))
                } else {
                    writeln!(out, "central database schema migrated")
                }
            })
        }
        Command::Serve(args) => serve(args),
        Command::Tenant(cmd) => tenant(cmd),
        Command::Token(TokenCommand::Issue {
            db,
            secret_file,
            tenant,
            device,
            ttl,
        }) => {
            // The lifetime first: a token that could not be used is not worth a look at the
            // database.
            let ttl = token_ttl(&ttl)?;
            let secret = read_secret(secret_file.as_deref())?;
            let tenant: TenantId = tenant.parse()?;
            db.open_existing()?.tenant(&tenant)?;
            let exp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .saturating_add(ttl)
                .as_secs();
            let token = issue_token(&secret, &tenant, &device, exp)?;
            print(|out| writeln!(out, "{token}"))
        }
        // Answered by `run`, with its own exit code.
        Command::Snapshot(args) => snapshot(args).map(|_| ()),
    }
}

fn main() -> ExitCode {
    let cli = match output::parse_args::<Cli>("pos-central") {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    // The server logs what it does; admin commands only what went wrong, so their stderr
    // holds just the error line.
    let level = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        // A log line that cannot be written (the reader of stderr went away) is dropped:
        // reporting it would `eprintln!` to that same stderr, which panics.
        .log_internal_errors(false)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // A closed stderr leaves nowhere to say it; the exit code still does.
            let _ = writeln!(io::stderr().lock(), "pos-central: error: {e}");
            ExitCode::from(2)
        }
    }
}
