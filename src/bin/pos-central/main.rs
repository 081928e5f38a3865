//! `pos-central`: the central sync server and its admin commands. Exit codes: 0 ok, 2 error
//! (printed on stderr, prefixed by the program name).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use pos_tenancy::central::{CentralError, CentralStore, CentralTenant, SqliteCentral};
use pos_tenancy::server::{app, issue_token, AppState, TokenError};
use pos_tenancy::{NewTenant, Plan, PlanLimits, TenantId, TenantIdError, TenantStatus};

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
    /// Serve the HTTP API until SIGTERM or Ctrl-C.
    Serve {
        /// The central database file.
        #[arg(long)]
        db: PathBuf,
        /// Address to listen on (port 0 picks a free one; the address is printed on stdout).
        #[arg(long, default_value = "127.0.0.1:7878")]
        listen: SocketAddr,
        /// File holding the token-signing secret (else the environment variable POS_CENTRAL_SECRET).
        #[arg(long)]
        secret_file: Option<PathBuf>,
    },
    /// Manage the tenants this server serves.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Device tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Register a tenant.
    Add {
        /// The central database file.
        #[arg(long)]
        db: PathBuf,
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
        /// Print the tenant as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List every tenant.
    List {
        /// The central database file.
        #[arg(long)]
        db: PathBuf,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Show one tenant.
    Show(Target),
    /// Suspend a tenant: its devices can neither push nor pull.
    Suspend(Target),
    /// Make a tenant active again.
    Activate(Target),
}

#[derive(Args)]
struct Target {
    /// The central database file.
    #[arg(long)]
    db: PathBuf,
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
        /// The central database file (the tenant must exist there).
        #[arg(long)]
        db: PathBuf,
        /// File holding the signing secret (else POS_CENTRAL_SECRET).
        #[arg(long)]
        secret_file: Option<PathBuf>,
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// The device (node id).
        #[arg(long)]
        device: String,
        /// How long it is valid: 30d, 12h, 15m or 90s.
        #[arg(long, default_value = "30d")]
        ttl: String,
    },
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Central(#[from] CentralError),
    #[error(transparent)]
    TenantId(#[from] TenantIdError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("no signing secret: pass --secret-file FILE or set POS_CENTRAL_SECRET")]
    NoSecret,
    #[error("cannot read the secret file {0}: {1}")]
    SecretFile(String, std::io::Error),
    #[error("--ttl {0:?} is not a duration like 30d, 12h, 15m or 90s")]
    Ttl(String),
    #[error("no database at {0} (create one with `pos-central tenant add --db {0} ...`)")]
    NoDatabase(String),
    #[error("cannot serve on {0}: {1}")]
    Serve(SocketAddr, std::io::Error),
    #[error("cannot write JSON: {0}")]
    Json(#[from] serde_json::Error),
}

fn open_existing(db: &Path) -> Result<SqliteCentral, CliError> {
    if !db.is_file() {
        return Err(CliError::NoDatabase(db.display().to_string()));
    }
    Ok(SqliteCentral::open(db)?)
}

fn read_secret(file: Option<&Path>) -> Result<Vec<u8>, CliError> {
    let secret = match file {
        Some(f) => {
            std::fs::read(f).map_err(|e| CliError::SecretFile(f.display().to_string(), e))?
        }
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

fn parse_ttl(s: &str) -> Option<Duration> {
    let split = s.len().checked_sub(1)?;
    let (n, unit) = s.split_at(split);
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

fn show(t: &CentralTenant, json: bool) -> Result<(), CliError> {
    if json {
        println!("{}", serde_json::to_string_pretty(t)?);
    } else {
        println!(
            "{}\t{}\t{}\t{}\t{} API calls/month",
            t.id, t.name, t.status, t.plan, t.limits.max_api_calls_month
        );
    }
    Ok(())
}

fn tenant(cmd: TenantCommand) -> Result<(), CliError> {
    match cmd {
        TenantCommand::Add {
            db,
            id,
            name,
            plan,
            max_api_calls,
            json,
        } => {
            let central = SqliteCentral::open(&db)?;
            let id: TenantId = id.parse()?;
            let mut t = central.add_tenant(&NewTenant::new(id.clone(), &name).plan(plan))?;
            if let Some(calls) = max_api_calls {
                let limits = PlanLimits {
                    max_api_calls_month: calls,
                    ..t.limits
                };
                t = central.set_limits(&id, limits)?;
            }
            show(&t, json)
        }
        TenantCommand::List { db, json } => {
            let tenants = open_existing(&db)?.tenants()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&tenants)?);
                return Ok(());
            }
            for t in &tenants {
                show(t, false)?;
            }
            Ok(())
        }
        TenantCommand::Show(t) => show(&open_existing(&t.db)?.tenant(&t.id.parse()?)?, t.json),
        TenantCommand::Suspend(t) => show(
            &open_existing(&t.db)?.set_status(&t.id.parse()?, TenantStatus::Suspended)?,
            t.json,
        ),
        TenantCommand::Activate(t) => show(
            &open_existing(&t.db)?.set_status(&t.id.parse()?, TenantStatus::Active)?,
            t.json,
        ),
    }
}

fn serve(db: &Path, listen: SocketAddr, secret_file: Option<&Path>) -> Result<(), CliError> {
    let secret = read_secret(secret_file)?;
    let store: Arc<dyn CentralStore> = Arc::new(SqliteCentral::open(db)?);
    let state = AppState::new(store, secret)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Serve(listen, e))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| CliError::Serve(listen, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| CliError::Serve(listen, e))?;
        // The one line on stdout: scripts and tests read the port from it.
        println!("listening on {addr}");
        tracing::info!(%addr, "pos-central serving");
        axum::serve(listener, app(state))
            .with_graceful_shutdown(shutdown_signal())
            .await
            .map_err(|e| CliError::Serve(addr, e))?;
        tracing::info!("pos-central stopped");
        Ok(())
    })
}

/// SIGTERM or Ctrl-C: stop taking connections, let requests in flight (and their commits)
/// finish, then exit.
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

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Serve {
            db,
            listen,
            secret_file,
        } => serve(&db, listen, secret_file.as_deref()),
        Command::Tenant(cmd) => tenant(cmd),
        Command::Token(TokenCommand::Issue {
            db,
            secret_file,
            tenant,
            device,
            ttl,
        }) => {
            let secret = read_secret(secret_file.as_deref())?;
            let tenant: TenantId = tenant.parse()?;
            open_existing(&db)?.tenant(&tenant)?;
            let ttl = parse_ttl(&ttl).ok_or(CliError::Ttl(ttl))?;
            let exp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .saturating_add(ttl)
                .as_secs();
            println!("{}", issue_token(&secret, &tenant, &device, exp)?);
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pos-central: error: {e}");
            ExitCode::from(2)
        }
    }
}
