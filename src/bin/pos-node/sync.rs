//! `pos-node sync`: push this node's operations to the central server and merge the others'.
//!
//! With `--once`, one round per tenant (push everything pending, pull to the server's head,
//! fetch the settings), then exit: 0 when every tenant's round went through, 2 when one
//! failed (each failure on stderr with its tenant, step, class and what to do; the other
//! tenants still ran). Without it, the sync engine runs until SIGTERM or Ctrl-C, then stops
//! after the round in flight. One line per tenant per round on stdout (JSON lines with
//! `--json`); failures also on stderr.

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args};
use crossbeam_channel::Receiver;
use pos_tenancy::sync::{
    read_token, ErrorClass, HttpTransport, RoundReport, SnapshotUse, Step, SyncConfig, SyncEngine,
    SyncError, SyncEvent, SyncOptions, Syncer, TokenDir, TokenProvider,
};
use pos_tenancy::{RowId, Store, TenantId};
use serde::Serialize;

use crate::output::{printable, quiet_on_close, warn, write_json_line};
use crate::{open_existing, CliError, Outcome};

#[derive(Args)]
#[command(group(ArgGroup::new("tokens").required(true).args(["token_file", "token_dir"])))]
pub(crate) struct SyncArgs {
    /// The database file.
    #[arg(long)]
    db: PathBuf,
    /// The central server (`http://127.0.0.1:8080`, `https://central.example`).
    #[arg(long, value_name = "URL")]
    server: String,
    /// The one tenant to sync (with --token-file).
    #[arg(long, requires = "token_file")]
    tenant: Option<TenantId>,
    /// The tenant's device token, in a file (read again whenever a token is needed).
    #[arg(long, requires = "tenant", value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Sync every tenant with a `<tenant>.token` file in this directory.
    #[arg(long, conflicts_with = "tenant", value_name = "DIR")]
    token_dir: Option<PathBuf>,
    /// One round per tenant, then exit (0: all synced; 2: a tenant failed).
    #[arg(long)]
    once: bool,
    /// Add a tenant this node does not hold yet from the server's configuration and pull it
    /// from the start (a new terminal joining the tenant); without it such a tenant is refused.
    #[arg(long)]
    join: bool,
    /// Seconds between rounds of a tenant that is in step (without --once).
    #[arg(long, value_name = "SECONDS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    interval: u64,
    /// Print one JSON object a line instead of text.
    #[arg(long)]
    json: bool,
}

/// Where the device tokens come from.
enum Tokens {
    File(PathBuf),
    Dir(TokenDir),
}

impl TokenProvider for Tokens {
    fn token(&mut self, tenant: &TenantId, refresh: bool) -> Result<String, String> {
        match self {
            Tokens::File(path) => read_token(path),
            Tokens::Dir(dir) => dir.token(tenant, refresh),
        }
    }
}

/// One line of `--json` output.
#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Line<'a> {
    /// A round that went through.
    Round {
        tenant: &'a TenantId,
        #[serde(flatten)]
        report: &'a RoundReport,
    },
    /// A round that failed.
    Error {
        tenant: &'a TenantId,
        step: Step,
        class: ErrorClass,
        message: &'a str,
        action: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_secs: Option<u64>,
    },
    /// A tenant that cannot be synced from this node at all.
    Skipped {
        tenant: &'a TenantId,
        reason: &'a str,
    },
    /// The server answers (first round, or again after failures).
    Online { tenant: &'a TenantId },
    /// The server could not be reached; the engine retries by itself.
    Offline {
        tenant: &'a TenantId,
        reason: &'a str,
    },
    /// A conflict recorded (`pos-node conflicts list`).
    Conflict { tenant: &'a TenantId, id: RowId },
    /// Operations wait while the server answers, with no progress for 30 s.
    Stalled { tenant: &'a TenantId },
    /// The engine stopped after SIGTERM or Ctrl-C.
    Stopped,
}

/// Prints what happens, on stdout (failures on stderr too).
struct Printer {
    json: bool,
    /// `--once`: nothing retries after the exit, whatever an error's action says.
    once: bool,
}

impl Printer {
    fn line(&self, text: &str, json: &Line<'_>) -> io::Result<()> {
        let mut out = io::stdout().lock();
        if self.json {
            write_json_line(&mut out, json)
        } else {
            writeln!(out, "{text}")?;
            out.flush()
        }
    }

    fn round(&self, tenant: &TenantId, r: &RoundReport) -> io::Result<()> {
        let mut text = format!(
            "{tenant}: pushed {}, pulled {} ({} applied), cursor {} of {}",
            r.pushed, r.pulled, r.applied, r.cursor, r.server_high
        );
        if r.set_aside > 0 {
            text.push_str(&format!(", {} set aside", r.set_aside));
        }
        if !r.conflicts.is_empty() {
            text.push_str(&format!(
                ", {} new conflict(s) (pos-node conflicts list)",
                r.conflicts.len()
            ));
        }
        if r.settings_changed {
            text.push_str(", settings updated");
        }
        match &r.snapshot {
            Some(SnapshotUse::Taken {
                cursor,
                rows,
                bytes,
            }) => text.push_str(&format!(
                ", took the server's snapshot up to {cursor} ({rows} rows, {bytes} bytes)"
            )),
            Some(SnapshotUse::Refused { reason }) => text.push_str(&format!(
                ", the server's snapshot was not taken ({}), the log was replayed",
                printable(reason)
            )),
            _ => {}
        }
        self.line(&text, &Line::Round { tenant, report: r })
    }

    /// A failure: on stderr always (it names the tenant, step, class and what to do), and as
    /// a JSON line with `--json`.
    fn error(&self, e: &SyncError) -> io::Result<()> {
        warn(&format!("error: {e}"));
        if self.once && e.class == ErrorClass::Transient {
            warn("this was one round (--once): run it again, or run without --once to retry by itself");
        }
        if !self.json {
            return Ok(());
        }
        let line = Line::Error {
            tenant: &e.tenant,
            step: e.step,
            class: e.class,
            message: &e.message,
            action: e.action(),
            retry_after_secs: e.retry_after.map(|d| d.as_secs()),
        };
        write_json_line(&mut io::stdout().lock(), &line)
    }

    fn skipped(&self, tenant: &TenantId, reason: &str) -> io::Result<()> {
        warn(&format!("error: tenant {tenant}: {reason}"));
        if !self.json {
            return Ok(());
        }
        write_json_line(&mut io::stdout().lock(), &Line::Skipped { tenant, reason })
    }

    /// An engine event; `Err` only when stdout is gone.
    fn event(&self, event: &SyncEvent) -> io::Result<()> {
        match event {
            SyncEvent::RoundDone(t, report) => self.round(t, report),
            SyncEvent::Error(e) => self.error(e),
            SyncEvent::Stalled(t) => {
                let text = format!(
                    "{t}: stalled: operations wait while the server answers and nothing has \
                     moved for 30 s (pos-node status)"
                );
                if !self.json {
                    warn(&text);
                    return Ok(());
                }
                self.line(&text, &Line::Stalled { tenant: t })
            }
            // Text mode says this through the round and error lines already.
            SyncEvent::Online(t) if self.json => self.line("", &Line::Online { tenant: t }),
            SyncEvent::Offline(t, reason) if self.json => self.line(
                "",
                &Line::Offline {
                    tenant: t,
                    reason: reason.as_str(),
                },
            ),
            SyncEvent::Conflict(t, id) if self.json => {
                self.line("", &Line::Conflict { tenant: t, id: *id })
            }
            _ => Ok(()),
        }
    }
}

pub(crate) fn run(args: SyncArgs) -> Result<Outcome, CliError> {
    let store = open_existing(&args.db)?;
    let transport =
        HttpTransport::new(&args.server).map_err(|e| CliError::Usage(format!("--server: {e}")))?;
    let printer = Printer {
        json: args.json,
        once: args.once,
    };
    let (tokens, wanted) = match (&args.tenant, &args.token_file, &args.token_dir) {
        (Some(t), Some(file), _) => (Tokens::File(file.clone()), vec![t.clone()]),
        (_, _, Some(dir)) => {
            let tokens = TokenDir::new(dir);
            let tenants = tokens.tenants().map_err(|e| {
                CliError::Usage(format!(
                    "cannot read the token directory {}: {e}",
                    dir.display()
                ))
            })?;
            if tenants.is_empty() {
                return Err(CliError::Usage(format!(
                    "no <tenant>.token file in {}",
                    dir.display()
                )));
            }
            (Tokens::Dir(tokens), tenants)
        }
        // clap requires --tenant with --token-file, or --token-dir.
        _ => {
            return Err(CliError::Usage(
                "give --tenant and --token-file, or --token-dir".into(),
            ))
        }
    };
    // Only tenants this node holds can be synced into it.
    let mut tenants = Vec::new();
    let mut skipped = 0;
    let mut tokens = tokens;
    let mut joined_once = 0;
    for t in wanted {
        match store.tenant_info(&t) {
            Ok(_) => tenants.push(t),
            Err(pos_tenancy::Error::TenantNotFound(_)) if args.join => {
                // Joined with one round; the runs below sync it like the others.
                let options = SyncOptions::default();
                let joined = match tokens.token(&t, false) {
                    Ok(token) => Syncer::new(&store, &transport, &options).join(&t, &token),
                    Err(reason) => {
                        skipped += 1;
                        let _ = printer.skipped(&t, &format!("no token: {reason}"));
                        continue;
                    }
                };
                let printed = match &joined {
                    Ok(report) => printer.round(&t, report),
                    Err(e) => printer.error(e),
                };
                quiet_on_close(printed)?;
                match joined {
                    // With --once the join's round was the tenant's round.
                    Ok(_) if args.once => joined_once += 1,
                    Ok(_) => tenants.push(t),
                    Err(_) => skipped += 1,
                }
            }
            Err(pos_tenancy::Error::TenantNotFound(_)) => {
                let add = format!(
                    "add it with --join (from the server's configuration) or with \
                     `pos-node tenant add --db {} --id {t} --name NAME`",
                    args.db.display()
                );
                if args.token_dir.is_none() {
                    return Err(CliError::Usage(format!(
                        "tenant {t} is not on this node; {add}"
                    )));
                }
                skipped += 1;
                let reason = format!("has a token file but is not on this node; {add}");
                // On stderr whatever becomes of stdout; the other tenants sync on.
                let _ = printer.skipped(&t, &reason);
            }
            Err(e) => return Err(e.into()),
        }
    }
    if tenants.is_empty() && joined_once == 0 && args.join {
        // Every tenant failed to join; each failure is on stderr already.
        return Ok(Outcome::Failed);
    }
    if tenants.is_empty() && joined_once == 0 {
        return Err(CliError::Usage(
            "no tenant of the token directory is on this node".into(),
        ));
    }
    if args.once {
        let failed = once(&store, &transport, tokens, &tenants, &printer)?;
        Ok(if failed + skipped > 0 {
            Outcome::Failed
        } else {
            Outcome::Ok
        })
    } else {
        let config = SyncConfig::new()
            .tenants(tenants)
            .interval(Duration::from_secs(args.interval));
        run_engine(store, transport, tokens, config, &printer)
    }
}

/// One round per tenant; how many failed.
fn once(
    store: &Store,
    transport: &HttpTransport,
    mut tokens: Tokens,
    tenants: &[TenantId],
    printer: &Printer,
) -> Result<usize, CliError> {
    let options = SyncOptions::default();
    let syncer = Syncer::new(store, transport, &options);
    let mut failed = 0;
    let mut output_open = true;
    for tenant in tenants {
        let result = tokens
            .token(tenant, false)
            .map_err(|m| SyncError {
                tenant: tenant.clone(),
                step: Step::Push,
                class: ErrorClass::Auth,
                message: m,
                retry_after: None,
            })
            .and_then(|token| syncer.round(tenant, &token));
        let printed = match &result {
            Ok(report) if output_open => printer.round(tenant, report),
            Ok(_) => Ok(()),
            Err(e) => {
                failed += 1;
                // Failures reach stderr even when stdout is gone.
                if output_open {
                    printer.error(e)
                } else {
                    warn(&format!("error: {e}"));
                    Ok(())
                }
            }
        };
        if let Err(e) = printed {
            quiet_on_close(Err(e))?;
            // The reader went away; the sync goes on for the other tenants.
            output_open = false;
        }
    }
    Ok(failed)
}

/// Runs the engine until SIGTERM or Ctrl-C (or until stdout is closed), then stops it after
/// the round in flight.
fn run_engine(
    store: Store,
    transport: HttpTransport,
    tokens: Tokens,
    config: SyncConfig,
    printer: &Printer,
) -> Result<Outcome, CliError> {
    let stop = stop_signal()
        .map_err(|e| CliError::Usage(format!("cannot listen for SIGTERM and Ctrl-C: {e}")))?;
    let engine = SyncEngine::start(store, transport, tokens, config);
    let mut outcome = Ok(Outcome::Ok);
    loop {
        crossbeam_channel::select! {
            // A signal, or (never expected) the signal thread gone: stop either way.
            recv(stop) -> _ => break,
            recv(engine.events()) -> event => match event {
                Ok(event) => {
                    if let Err(e) = printer.event(&event) {
                        outcome = quiet_on_close(Err(e)).map(|()| Outcome::Ok);
                        break;
                    }
                }
                Err(_) => {
                    outcome = Err(CliError::Usage("the sync engine stopped unexpectedly".into()));
                    break;
                }
            },
        }
    }
    engine.shutdown();
    if matches!(outcome, Ok(Outcome::Ok)) {
        // A reader gone is no error; a full disk is, as for every other line.
        quiet_on_close(printer.line("stopped", &Line::Stopped))?;
    }
    outcome
}

/// A channel that gets a message when SIGTERM or SIGINT (Ctrl-C) arrives. Waiting on it costs
/// nothing: the signals are read by a thread blocked on signal-hook's self-pipe.
#[cfg(not(windows))]
fn stop_signal() -> io::Result<Receiver<()>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])?;
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name("pos-node-signals".into())
        .spawn(move || {
            if signals.forever().next().is_some() {
                let _ = tx.send(());
            }
        })?;
    Ok(rx)
}

/// A channel that gets a message when Ctrl-C (or a termination request) arrives. Windows has no
/// self-pipe: a flag set by the handler, looked at ten times a second by a sleeping thread.
#[cfg(windows)]
fn stop_signal() -> io::Result<Receiver<()>> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&flag))?;
    }
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name("pos-node-signals".into())
        .spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = tx.send(());
        })?;
    Ok(rx)
}
