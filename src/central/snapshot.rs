//! Snapshots of tenants, made and kept by the central server, so that a new terminal takes a
//! tenant's state in one file instead of replaying its whole log.
//!
//! A snapshot is a tenant export ([`crate::Store::export_tenant`]) of a *shadow node*: a node
//! database the server keeps per tenant (`<dir>/<tenant>/shadow.db`) that only ever pulls the
//! tenant's log, exactly as a terminal would, so the snapshot holds what a terminal that
//! replayed the log up to the snapshot's cursor holds. The shadow is kept between builds, so a
//! build pulls only what is new since the last one.
//!
//! The directory of a tenant holds:
//! - `shadow.db` (and SQLite's `-wal`/`-shm`): the shadow node;
//! - `build.lock`: held (an exclusive file lock) by the one builder of the tenant;
//! - `snapshot-<cursor>.export` and its `.sha256` (`sha256sum` format): the published snapshot,
//!   its cursor (20 digits) in its name;
//! - `snapshot.partial*`: a build in progress (or one a crash interrupted).
//!
//! Invariants, and why:
//! - A published file is whole: the export is written, checked and sealed under
//!   `snapshot.partial`, its cursor read back from the file, its `.sha256` written (synced,
//!   renamed) beside the published name, and only then the file hard-linked to that name, which
//!   never replaces a file. A crash leaves at worst `snapshot.partial*` or a `.sha256` without its
//!   file, which the next build removes; a reader looks only for `snapshot-<cursor>.export`.
//! - One builder per tenant, across processes (several `pos-central` over one PostgreSQL
//!   database share the directory): `build.lock` is taken with a non-blocking exclusive lock
//!   ([`std::fs::File::try_lock`]); a second builder gets [`SnapshotError::Busy`] and changes
//!   nothing. The lock is the operating system's, so a crashed builder holds it no longer.
//!   Processes that build into one directory must see it on one machine's file system: a
//!   network file system's locks are not to be relied on.
//! - The shadow writes nothing of its own but what every node's merge writes: the records of
//!   the conflicts it meets. It pushes them like every terminal (the same ids; the record with
//!   the newest stamp is the one every node keeps) and pulls them back, so a terminal that
//!   joins from the snapshot holds the very record the others end with, and the snapshot
//!   carries no operation the server has not received. An outbox that is still not empty
//!   after that is [`SnapshotError::ShadowWrote`], and nothing is published.
//! - Older snapshots are removed once a newer one is published. A download in flight keeps
//!   its open file (on Linux an unlinked file lives while it is open).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{CentralError, CentralStore};
use crate::ids::TenantId;
use crate::protocol::SnapshotInfo;
use crate::store::Store;
use crate::sync::{DirectTransport, SyncError, SyncOptions, Syncer};
use crate::tenant::settings::NewTenant;
use crate::tenant_io::TenantIoError;

/// The name of the shadow node's database in a tenant's directory.
const SHADOW: &str = "shadow.db";
/// The lock file a builder holds.
const LOCK: &str = "build.lock";
/// The name an export is written under before it is published; everything starting with it
/// is a build in progress, or the leftovers of one a crash interrupted.
const STAGING: &str = "snapshot.partial";
const PREFIX: &str = "snapshot-";
const SUFFIX: &str = ".export";
const SIDECAR: &str = ".sha256";

/// What went wrong making, finding or reading a snapshot.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Another builder (this process or another) is building the tenant's snapshot now;
    /// nothing was changed. Try again once it is done.
    #[error(
        "a snapshot of tenant {tenant} is being built by another process ({lock} is locked); \
         nothing was changed, try again later"
    )]
    Busy {
        /// The tenant.
        tenant: TenantId,
        /// The lock file.
        lock: PathBuf,
    },
    /// A tenant id that cannot name a directory (never one that parsed as a [`TenantId`]).
    #[error("{0:?} cannot name a snapshot directory")]
    BadTenant(String),
    /// A file or directory of the snapshots could not be read or written.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The central store could not say what the tenant is.
    #[error("tenant {tenant}: {source}")]
    Central {
        /// The tenant.
        tenant: TenantId,
        /// Why.
        source: Box<CentralError>,
    },
    /// The shadow node's database failed.
    #[error("tenant {tenant}: the shadow node {path} failed: {source}")]
    Shadow {
        /// The tenant.
        tenant: TenantId,
        /// The shadow's database.
        path: PathBuf,
        /// Why.
        source: Box<crate::Error>,
    },
    /// Pulling the tenant's log into the shadow failed; what was pulled stays for the next
    /// build, nothing was published.
    #[error("pulling the log into the shadow node failed, nothing was published: {0}")]
    Pull(#[source] Box<SyncError>),
    /// The shadow holds operations of its own for the tenant, which a snapshot must never
    /// carry; nothing was published.
    #[error(
        "the shadow node of tenant {tenant} still holds {pending} operations of its own after \
         pushing them; a snapshot must not carry them, nothing was published (remove {path} to \
         rebuild the shadow from the log)"
    )]
    ShadowWrote {
        /// The tenant.
        tenant: TenantId,
        /// How many.
        pending: u64,
        /// The shadow's database.
        path: PathBuf,
    },
    /// Exporting the shadow's rows failed; nothing was published.
    #[error("exporting tenant {tenant} failed, nothing was published: {source}")]
    Export {
        /// The tenant.
        tenant: TenantId,
        /// Why.
        source: Box<TenantIoError>,
    },
    /// The exported file's `sync_state` does not hold the cursor the shadow reached; nothing
    /// was published.
    #[error(
        "the export of tenant {tenant} holds cursor {found}, the shadow reached {expected}; \
         nothing was published"
    )]
    CursorMismatch {
        /// The tenant.
        tenant: TenantId,
        /// The shadow's cursor.
        expected: u64,
        /// The file's (0: none).
        found: u64,
    },
    /// A published snapshot's `.sha256` is missing or not a `sha256sum` line.
    #[error("the checksum file {path} of a published snapshot {reason}")]
    Sidecar {
        /// The `.sha256` file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

type Result<T, E = SnapshotError> = std::result::Result<T, E>;

impl From<SyncError> for SnapshotError {
    fn from(e: SyncError) -> Self {
        SnapshotError::Pull(Box::new(e))
    }
}

fn io<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> SnapshotError + 'a {
    move |source| SnapshotError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// The snapshots of every tenant under one directory, one subdirectory per tenant (see the
/// module docs for what it holds). Cheap to clone; holds no open file.
#[derive(Debug, Clone)]
pub struct TenantSnapshots {
    dir: PathBuf,
}

impl TenantSnapshots {
    /// Snapshots under `dir` (made on the first build if missing).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The tenant's directory. A [`TenantId`] is a validated slug; checked again here, as
    /// the one place a tenant id becomes a path.
    fn tenant_dir(&self, tenant: &TenantId) -> Result<PathBuf> {
        let id = tenant.as_str();
        let safe = !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !safe {
            return Err(SnapshotError::BadTenant(id.to_owned()));
        }
        Ok(self.dir.join(id))
    }

    /// Brings the tenant's shadow node up to the head of its log in `central` and publishes
    /// a snapshot of it, then removes older snapshots. When the newest published snapshot
    /// already holds the shadow's cursor and its bytes still match its `.sha256`, nothing new
    /// is written and that one is returned (settings changed since then reach a terminal with
    /// its first round's settings pull); one damaged on disk is replaced.
    ///
    /// [`SnapshotError::Busy`] when another builder holds the tenant; a crash at any point
    /// leaves at worst files this removes on its next run. Blocking (SQLite and file work):
    /// call it off an async runtime's threads.
    pub fn build<S: CentralStore + ?Sized + 'static>(
        &self,
        central: Arc<S>,
        tenant: &TenantId,
    ) -> Result<SnapshotInfo> {
        let dir = self.tenant_dir(tenant)?;
        make_dir(&dir)?;
        let _lock = lock(&dir, tenant)?;
        clean_leftovers(&dir)?;
        let record = central
            .tenant(tenant)
            .map_err(|source| SnapshotError::Central {
                tenant: tenant.clone(),
                source: Box::new(source),
            })?;
        let shadow_path = dir.join(SHADOW);
        let shadow_err = |source: crate::Error| SnapshotError::Shadow {
            tenant: tenant.clone(),
            path: shadow_path.clone(),
            source: Box::new(source),
        };
        let store = Store::open(&shadow_path).map_err(shadow_err)?;
        match store.tenant_info(tenant) {
            Ok(_) => {}
            Err(crate::Error::TenantNotFound(_)) => {
                let mut new = NewTenant::new(tenant.clone(), &record.name).plan(record.plan);
                new.settings = record.settings.clone();
                store.add_tenant(&new).map_err(shadow_err)?;
            }
            Err(e) => return Err(shadow_err(e)),
        }
        let transport = DirectTransport::new(central);
        // The shadow is what snapshots are made of: it replays the log, never takes one.
        let options = SyncOptions::default().snapshot_from(None);
        let syncer = Syncer::new(&store, &transport, &options);
        // DirectTransport ignores the token: the shadow is the server's own node.
        syncer.pull(tenant, "")?;
        syncer.pull_config(tenant, "")?;
        // Its conflict records go to the log like every terminal's, and come back with the
        // next pull. Bounded: a push the server took leaves the outbox empty.
        for _ in 0..3 {
            if own_operations(&store, tenant).map_err(shadow_err)? == 0 {
                break;
            }
            syncer.push(tenant, "")?;
            syncer.pull(tenant, "")?;
        }
        let pending = own_operations(&store, tenant).map_err(shadow_err)?;
        if pending > 0 {
            return Err(SnapshotError::ShadowWrote {
                tenant: tenant.clone(),
                pending,
                path: shadow_path,
            });
        }
        let cursor = crate::sync::state::cursor(&store.conn, tenant).map_err(shadow_err)?;
        if let Some((info, path)) = self.newest(tenant)? {
            if info.cursor == cursor {
                let (sha256, _) = crate::backup::sha256_file(&path).map_err(io("read", &path))?;
                if sha256 == info.sha256 {
                    return Ok(info);
                }
                // Damaged on disk since it was published: every download of it fails its
                // checksum, so it is published again (a download in flight keeps its file).
                remove_published(&path)?;
            }
        }
        // The shadow's record of earlier exports names files that are gone; a snapshot should
        // not hand them to a terminal (`backups` is local-only: this leaves no operation).
        store
            .conn
            .execute(
                "DELETE FROM backups WHERE tenant_id = ?1 AND kind = 'tenant_export'",
                [tenant],
            )
            .map_err(|e| shadow_err(e.into()))?;
        let staging = dir.join(STAGING);
        let export = store
            .export_tenant(tenant, &staging, &mut |_| {})
            .map_err(|source| SnapshotError::Export {
                tenant: tenant.clone(),
                source: Box::new(source),
            })?;
        drop(store);
        let found = file_cursor(&staging, tenant)?;
        if found != cursor {
            remove_staging(&dir);
            return Err(SnapshotError::CursorMismatch {
                tenant: tenant.clone(),
                expected: cursor,
                found,
            });
        }
        let published = dir.join(snapshot_name(cursor));
        publish(&staging, &published, &export.sha256)?;
        remove_staging(&dir);
        remove_older(&dir, cursor)?;
        Ok(SnapshotInfo {
            cursor,
            sha256: export.sha256,
            bytes: export.bytes,
        })
    }

    /// The tenant's newest published snapshot and its path, or `None` when it has none: its
    /// cursor from its name, its SHA-256 from its `.sha256`, its size from the file system.
    pub fn newest(&self, tenant: &TenantId) -> Result<Option<(SnapshotInfo, PathBuf)>> {
        Ok(self
            .open_newest(tenant)?
            .map(|(info, path, _file)| (info, path)))
    }

    /// [`TenantSnapshots::newest`] with the file opened for reading: a newer build may remove
    /// the file once it is listed, but never once it is open (its size is the open file's).
    pub(crate) fn open_newest(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<(SnapshotInfo, PathBuf, File)>> {
        let dir = self.tenant_dir(tenant)?;
        // A build publishing a newer snapshot removes the older one: look again, a few times
        // (each look that loses the race finds a newer snapshot; builds are far apart).
        let mut attempts = 0;
        loop {
            attempts += 1;
            let Some(cursor) = published(&dir)?.into_iter().max() else {
                return Ok(None);
            };
            let path = dir.join(snapshot_name(cursor));
            let gone = |e: &SnapshotError| {
                attempts < 5
                    && matches!(e, SnapshotError::Sidecar { .. } | SnapshotError::Io { .. })
                    && !path.exists()
            };
            let opened = File::open(&path)
                .map_err(io("open", &path))
                .and_then(|file| {
                    let sha256 = read_sidecar(&checksum_path(&path))?;
                    let bytes = file.metadata().map_err(io("read", &path))?.len();
                    Ok((sha256, bytes, file))
                });
            match opened {
                Ok((sha256, bytes, file)) => {
                    let info = SnapshotInfo {
                        cursor,
                        sha256,
                        bytes,
                    };
                    return Ok(Some((info, path, file)));
                }
                Err(e) if gone(&e) => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// Makes a directory (and its parents) that only its owner may enter: a snapshot holds every
/// row of its tenant.
fn make_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io("create", dir))
}

/// The published name of a snapshot at `cursor`: zero-padded, so names sort as cursors do.
fn snapshot_name(cursor: u64) -> String {
    format!("{PREFIX}{cursor:020}{SUFFIX}")
}

/// The cursor a published snapshot's name carries.
fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn checksum_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(SIDECAR);
    PathBuf::from(name)
}

/// The cursors of the snapshots published in a tenant's directory (none if it is missing).
fn published(dir: &Path) -> Result<Vec<u64>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("list", dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io("list", dir))?;
        if let Some(cursor) = entry.file_name().to_str().and_then(parse_name) {
            out.push(cursor);
        }
    }
    Ok(out)
}

/// The SHA-256 a `.sha256` file records (`sha256sum` format: the hex, two spaces, the name).
fn read_sidecar(path: &Path) -> Result<String> {
    let bad = |reason: &str| SnapshotError::Sidecar {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(bad("is missing")),
        Err(e) => return Err(io("read", path)(e)),
    };
    let hex = text.split_whitespace().next().unwrap_or_default();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("does not start with a SHA-256 in hex"));
    }
    Ok(hex.to_ascii_lowercase())
}

/// Takes the tenant's build lock, or answers [`SnapshotError::Busy`].
fn lock(dir: &Path, tenant: &TenantId) -> Result<File> {
    let path = dir.join(LOCK);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io("open", &path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(SnapshotError::Busy {
            tenant: tenant.clone(),
            lock: path,
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(io("lock", &path)(e)),
    }
}

/// Removes what an interrupted build left: `snapshot.partial*`, and a `.sha256` whose
/// snapshot was never published. Called with the lock held.
fn clean_leftovers(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(io("list", dir))?;
    for entry in entries {
        let entry = entry.map_err(io("list", dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let orphan = name
            .strip_suffix(SIDECAR)
            .and_then(parse_name)
            .is_some_and(|cursor| !dir.join(snapshot_name(cursor)).exists());
        let partial_sidecar = name.ends_with(".sha256.partial") && name.starts_with(PREFIX);
        if name.starts_with(STAGING) || orphan || partial_sidecar {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(io("remove", &path))?;
        }
    }
    Ok(())
}

/// Removes the staging export and its `.sha256`, as far as they are there.
fn remove_staging(dir: &Path) {
    let staging = dir.join(STAGING);
    let _ = std::fs::remove_file(checksum_path(&staging));
    let _ = std::fs::remove_file(&staging);
}

/// Publishes the checked export `staging` as `published`: its `.sha256` first (written under
/// a temporary name, synced, renamed), then the file itself by a hard link, which never
/// replaces a file, then the directory synced.
fn publish(staging: &Path, published: &Path, sha256: &str) -> Result<()> {
    let sums = checksum_path(published);
    let mut partial = sums.clone().into_os_string();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let base = published
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    {
        let mut out = File::create(&partial).map_err(io("write", &partial))?;
        out.write_all(format!("{sha256}  {base}\n").as_bytes())
            .and_then(|()| out.sync_all())
            .map_err(io("write", &partial))?;
    }
    // Never over a published file, nor over its `.sha256` (the lock keeps other builders out
    // between this check and the link).
    if published.exists() {
        let _ = std::fs::remove_file(&partial);
        return Err(io("publish", published)(std::io::Error::from(
            std::io::ErrorKind::AlreadyExists,
        )));
    }
    std::fs::rename(&partial, &sums).map_err(io("rename", &partial))?;
    std::fs::hard_link(staging, published).map_err(io("publish", published))?;
    let dir = published.parent().unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("sync", dir))?;
    Ok(())
}

/// Removes the published snapshots older than `cursor`.
fn remove_older(dir: &Path, cursor: u64) -> Result<()> {
    for old in published(dir)?.into_iter().filter(|c| *c < cursor) {
        remove_published(&dir.join(snapshot_name(old)))?;
    }
    Ok(())
}

/// Removes a published snapshot, the file before its `.sha256` (a reader looks for the file).
fn remove_published(path: &Path) -> Result<()> {
    for file in [path.to_path_buf(), checksum_path(path)] {
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("remove", &file)(e)),
        }
    }
    Ok(())
}

/// Operations in the shadow's outbox for the tenant.
fn own_operations(store: &Store, tenant: &TenantId) -> crate::Result<u64> {
    let n: i64 = store.conn.query_row(
        "SELECT count(*) FROM pending_operations WHERE tenant_id = ?1",
        [tenant],
        |r| r.get(0),
    )?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The cursor an export file's `sync_state` holds, read as a terminal taking it will read it.
fn file_cursor(file: &Path, tenant: &TenantId) -> Result<u64> {
    let read = || -> crate::Result<u64> {
        let conn = rusqlite::Connection::open_with_flags(
            file,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        crate::sync::state::cursor(&conn, tenant)
    };
    read().map_err(|e| SnapshotError::Io {
        action: "read the cursor of",
        path: file.to_path_buf(),
        source: std::io::Error::other(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tid(s: &str) -> TenantId {
        s.parse().expect("tenant id")
    }

    fn publish_fake(dir: &Path, cursor: u64, body: &[u8]) -> String {
        let path = dir.join(snapshot_name(cursor));
        std::fs::write(&path, body).expect("file");
        let sha = crate::backup::hex(&<sha2::Sha256 as sha2::Digest>::digest(body));
        std::fs::write(
            checksum_path(&path),
            format!("{sha}  {}\n", snapshot_name(cursor)),
        )
        .expect("sidecar");
        sha
    }

    #[test]
    fn names_carry_the_cursor_and_sort_as_cursors_do() {
        assert_eq!(snapshot_name(42), "snapshot-00000000000000000042.export");
        assert_eq!(parse_name(&snapshot_name(u64::MAX)), Some(u64::MAX));
        assert!(snapshot_name(9) < snapshot_name(10));
        for bad in [
            "snapshot-42.export",
            "snapshot-0000000000000000004x.export",
            "snapshot-00000000000000000042.export.sha256",
            "snapshot.partial",
        ] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_newest_is_the_highest_cursor_with_its_sidecar_and_size() {
        let root = tempfile::tempdir().expect("dir");
        let snaps = TenantSnapshots::new(root.path());
        let caps = tid("caps");
        assert!(snaps.newest(&caps).expect("none yet").is_none());
        let dir = root.path().join("caps");
        std::fs::create_dir_all(&dir).expect("dir");
        publish_fake(&dir, 9, b"old");
        let sha = publish_fake(&dir, 10, b"newest");
        let (info, path) = snaps.newest(&caps).expect("read").expect("one");
        assert_eq!(
            info,
            SnapshotInfo {
                cursor: 10,
                sha256: sha,
                bytes: 6
            }
        );
        assert_eq!(path, dir.join(snapshot_name(10)));
        std::fs::remove_file(checksum_path(&path)).expect("rm");
        assert!(matches!(
            snaps.newest(&caps),
            Err(SnapshotError::Sidecar { .. })
        ));
    }

    #[test]
    fn leftovers_of_an_interrupted_build_are_removed_and_published_files_kept() {
        let root = tempfile::tempdir().expect("dir");
        let dir = root.path();
        publish_fake(dir, 5, b"kept");
        for leftover in [
            "snapshot.partial",
            "snapshot.partial.partial",
            "snapshot.partial.partial-journal",
            "snapshot.partial.sha256",
        ] {
            std::fs::write(dir.join(leftover), b"x").expect("leftover");
        }
        // A sidecar whose file was never linked, and one half written.
        std::fs::write(dir.join(format!("{}.sha256", snapshot_name(7))), b"x").expect("w");
        std::fs::write(
            dir.join(format!("{}.sha256.partial", snapshot_name(7))),
            b"x",
        )
        .expect("w");
        std::fs::write(dir.join(SHADOW), b"x").expect("shadow");
        clean_leftovers(dir).expect("clean");
        let mut left: Vec<String> = std::fs::read_dir(dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                SHADOW.to_owned(),
                snapshot_name(5),
                format!("{}.sha256", snapshot_name(5))
            ]
        );
    }

    #[test]
    fn a_second_builder_of_a_tenant_is_told_busy_while_the_first_holds_the_lock() {
        let root = tempfile::tempdir().expect("dir");
        let caps = tid("caps");
        let held = lock(root.path(), &caps).expect("first");
        assert!(matches!(
            lock(root.path(), &caps),
            Err(SnapshotError::Busy { .. })
        ));
        drop(held);
        assert!(lock(root.path(), &caps).is_ok(), "free again");
    }

    #[test]
    fn publishing_never_replaces_a_file() {
        let root = tempfile::tempdir().expect("dir");
        let dir = root.path();
        publish_fake(dir, 3, b"first");
        std::fs::write(dir.join(STAGING), b"second").expect("staging");
        let err = publish(
            &dir.join(STAGING),
            &dir.join(snapshot_name(3)),
            &"0".repeat(64),
        )
        .expect_err("exists");
        assert!(matches!(err, SnapshotError::Io { .. }), "{err}");
        assert_eq!(
            std::fs::read(dir.join(snapshot_name(3))).expect("read"),
            b"first"
        );
        let sha = read_sidecar(&checksum_path(&dir.join(snapshot_name(3)))).expect("sidecar");
        assert_ne!(sha, "0".repeat(64), "its .sha256 is untouched");
    }

    /// A central store with tenant `caps`, and a node that pushed `n` products of it.
    fn pushed(central: &Arc<crate::SqliteCentral>, node: &Store, n: usize) {
        let caps = tid("caps");
        if central.tenant(&caps).is_err() {
            central
                .add_tenant(&NewTenant::new(caps.clone(), "Caps"))
                .expect("central tenant");
        }
        if node.tenant_info(&caps).is_err() {
            node.add_tenant(&NewTenant::new(caps.clone(), "Caps"))
                .expect("node tenant");
            node.tenant(&caps)
                .expect("handle")
                .bootstrap_admin("owner", "Owner")
                .expect("admin");
        }
        use crate::TenantAccess;
        let t = node.tenant(&caps).expect("handle");
        let admin = t
            .list::<crate::catalog::User>(&crate::ListQuery::new().limit(1))
            .expect("users")
            .rows[0]
            .id;
        let admin = t.actor(admin).expect("actor");
        for _ in 0..n {
            let now = crate::Timestamp::now();
            let id = crate::RowId::new();
            let p = crate::catalog::Product {
                id,
                sku: format!("SKU-{id}"),
                barcode: None,
                name: "Part".into(),
                description: None,
                brand: None,
                category_id: None,
                kind: "stocked".into(),
                price_minor: 100,
                cost_minor: 50,
                currency: "USD".into(),
                taxable: true,
                reorder_level_milli: 0,
                image: None,
                active: true,
                created_at: now,
                updated_at: now,
            };
            t.insert(&admin, &p).expect("product");
        }
        let transport = DirectTransport::new(Arc::clone(central));
        let options = SyncOptions::default();
        Syncer::new(node, &transport, &options)
            .push(&caps, "")
            .expect("pushed");
    }

    #[test]
    fn a_build_publishes_the_log_and_the_next_pulls_only_what_is_new_replacing_the_old_file() {
        use crate::sync::Transport;
        let root = tempfile::tempdir().expect("dir");
        let central = Arc::new(crate::SqliteCentral::open_in_memory().expect("central"));
        let node = Store::open_in_memory().expect("node");
        let snaps = TenantSnapshots::new(root.path().join("snaps"));
        let caps = tid("caps");
        pushed(&central, &node, 3);
        let first = snaps.build(Arc::clone(&central), &caps).expect("built");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(root.path().join("snaps").join("caps"))
                .expect("dir")
                .permissions()
                .mode();
            assert_eq!(
                mode & 0o077,
                0,
                "only the owner enters a tenant's snapshots"
            );
        }
        let head = central.operations_after(&caps, 0, 1).expect("page").high;
        assert_eq!(first.cursor, head);
        let (newest, first_path) = snaps.newest(&caps).expect("newest").expect("one");
        assert_eq!(newest, first);
        assert_eq!(file_cursor(&first_path, &caps).expect("cursor"), head);
        assert_eq!(
            snaps.build(Arc::clone(&central), &caps).expect("again"),
            first,
            "nothing new: the same snapshot"
        );

        pushed(&central, &node, 2);
        let second = snaps.build(Arc::clone(&central), &caps).expect("built");
        assert_eq!(second.cursor, first.cursor + 2);
        assert!(!first_path.exists() && !checksum_path(&first_path).exists());

        // Served by DirectTransport byte for byte, into a new file only.
        let transport = DirectTransport::new(Arc::clone(&central)).with_snapshots(snaps.clone());
        let into = root.path().join("joined.export");
        let got = transport.snapshot(&caps, "", &into).expect("served");
        assert_eq!(got, Some(second.clone()));
        let (_, path) = snaps.newest(&caps).expect("newest").expect("one");
        assert_eq!(
            std::fs::read(&into).expect("copy"),
            std::fs::read(&path).expect("published")
        );
        let err = transport.snapshot(&caps, "", &into).expect_err("exists");
        assert!(
            matches!(err, crate::sync::TransportError::SnapshotFile { .. }),
            "{err}"
        );
        assert_eq!(
            std::fs::read(&into).expect("kept"),
            std::fs::read(&path).expect("p")
        );

        // Without snapshots, or for a tenant without one: none.
        let plain = DirectTransport::new(Arc::clone(&central));
        assert_eq!(
            plain.snapshot(&caps, "", &root.path().join("x")).ok(),
            Some(None)
        );
        central
            .add_tenant(&NewTenant::new(tid("bolt"), "Bolt"))
            .expect("bolt");
        assert_eq!(
            transport
                .snapshot(&tid("bolt"), "", &root.path().join("y"))
                .ok(),
            Some(None)
        );
        assert!(!root.path().join("x").exists() && !root.path().join("y").exists());
    }

    #[test]
    fn a_published_file_damaged_on_disk_is_refused_by_its_checksum_naming_the_partial_copy() {
        use crate::sync::Transport;
        let root = tempfile::tempdir().expect("dir");
        let central = Arc::new(crate::SqliteCentral::open_in_memory().expect("central"));
        let node = Store::open_in_memory().expect("node");
        let snaps = TenantSnapshots::new(root.path().join("snaps"));
        let caps = tid("caps");
        pushed(&central, &node, 1);
        snaps.build(Arc::clone(&central), &caps).expect("built");
        let (_, path) = snaps.newest(&caps).expect("newest").expect("one");
        let mut bytes = std::fs::read(&path).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, &bytes).expect("damaged");
        let into = root.path().join("joined.export");
        let transport = DirectTransport::new(Arc::clone(&central)).with_snapshots(snaps);
        let err = transport.snapshot(&caps, "", &into).expect_err("damaged");
        let text = err.to_string();
        assert!(text.contains("does not match its checksum"), "{text}");
        assert!(text.contains(&into.display().to_string()), "{text}");
    }

    #[test]
    fn the_conflict_records_of_the_shadows_merge_are_pushed_and_stay_out_of_the_snapshots_outbox() {
        let root = tempfile::tempdir().expect("dir");
        let central = Arc::new(crate::SqliteCentral::open_in_memory().expect("central"));
        let snaps = TenantSnapshots::new(root.path().join("snaps"));
        let caps = tid("caps");
        // Two terminals that each made an admin named `owner` offline: a duplicate key the
        // shadow's merge records as a conflict, as every node applying the log does.
        for _ in 0..2 {
            let node = Store::open_in_memory().expect("node");
            pushed(&central, &node, 1);
        }
        let info = snaps.build(Arc::clone(&central), &caps).expect("built");
        let (_, path) = snaps.newest(&caps).expect("newest").expect("one");
        let conn = rusqlite::Connection::open(&path).expect("open");
        let count = |sql: &str| -> i64 {
            conn.query_row(sql, [caps.as_str()], |r| r.get(0))
                .expect("count")
        };
        assert!(count("SELECT count(*) FROM sync_conflicts WHERE tenant_id = ?1") > 0);
        assert_eq!(
            count("SELECT count(*) FROM pending_operations WHERE tenant_id = ?1"),
            0,
            "no operation of the shadow's own"
        );
        assert_eq!(
            count("SELECT count(*) FROM backups WHERE tenant_id = ?1"),
            0,
            "no record of the shadow's exports"
        );
        assert_eq!(file_cursor(&path, &caps).expect("cursor"), info.cursor);
        // The log holds the shadow's record, so every terminal ends with the same one.
        let shadow: String = conn
            .query_row("SELECT node_id FROM node_state", [], |r| r.get(0))
            .expect("node");
        let page = central.operations_after(&caps, 0, 1000).expect("log");
        assert!(page
            .operations
            .iter()
            .any(|o| o.operation.table == "sync_conflicts"
                && o.operation.device_id.to_string() == shadow));
        assert_eq!(page.high, info.cursor, "the snapshot covers its own pushes");
    }
}
