//! A snapshot: a copy of a database taken with SQLite's online backup API, with its SHA-256
//! recorded beside it in `<copy>.sha256` (`sha256sum` format, so `sha256sum -c` checks it too).
//!
//! Invariants, and why:
//! - The copy is of the source connection's view: taken inside the caller's read transaction,
//!   it holds exactly what that transaction reads. (SQLite refuses a source that is writing, so
//!   the caller copies before its first change.)
//! - A copy that failed is removed: a half-written snapshot must never be taken for a good one.
//! - The copy, its checksum file (written whole under a temporary name, then renamed) and the
//!   directory entries are synced before [`PendingBackup::finish`] returns, so a caller that
//!   changes the original only afterwards can always go back, even after a power cut. Hashing
//!   runs on another thread meanwhile, so the caller's own work overlaps it.
//! - A snapshot is used only after [`verify_checksum`] has matched it against its record.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{hex, Pages, SnapshotError, LOCK_WAIT};

/// Pages copied per step of the online backup, between progress reports.
pub(crate) const BACKUP_PAGES_PER_STEP: i32 = 1024;

/// A snapshot of a database: the copy, with its SHA-256 recorded beside it. Adoption takes one
/// before it changes anything.
#[derive(Debug, Clone, Serialize)]
pub struct BackupFile {
    /// The copy of the database.
    pub path: PathBuf,
    /// Its SHA-256, also written to `<path>.sha256` in `sha256sum` format.
    pub sha256: String,
    /// Its size in bytes.
    pub bytes: u64,
}

/// Copies the database `conn` reads into a new file `name` in `dir` (created if missing) with
/// the online backup API, reporting pages copied to `progress`, and starts hashing the copy on
/// another thread. The file must not exist yet. A busy or locked source is retried for
/// [`LOCK_WAIT`], then the copy fails and is removed.
pub(crate) fn take_snapshot(
    conn: &Connection,
    dir: &Path,
    name: &str,
    progress: &mut dyn FnMut(Pages),
) -> Result<PendingBackup, SnapshotError> {
    take_snapshot_in_steps(conn, dir, name, BACKUP_PAGES_PER_STEP, progress)
}

/// [`take_snapshot`], copying `pages_per_step` pages a step and yielding the processor between
/// steps, so that a copy beside a busy writer shares the disk with it in small pieces.
pub(crate) fn take_snapshot_in_steps(
    conn: &Connection,
    dir: &Path,
    name: &str,
    pages_per_step: i32,
    progress: &mut dyn FnMut(Pages),
) -> Result<PendingBackup, SnapshotError> {
    let target = dir.join(name);
    let fail = |reason: String| SnapshotError::Write {
        path: target.clone(),
        reason,
    };
    std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    if target.exists() {
        return Err(fail("the file already exists".into()));
    }
    let result = (|| {
        let mut dst = Connection::open(&target).map_err(|e| e.to_string())?;
        // The copy is a new file, removed if anything fails and synced whole by `seal`: a
        // rollback journal and syncs of its own would only slow it down. A slow copy costs
        // the till: the source's log cannot be checkpointed past the copy's read transaction
        // and grows with every sale until the copy ends.
        dst.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")
            .map_err(|e| e.to_string())?;
        let backup = rusqlite::backup::Backup::new(conn, &mut dst).map_err(|e| e.to_string())?;
        let mut busy_waits = 0u128;
        loop {
            let step = backup.step(pages_per_step).map_err(|e| e.to_string())?;
            progress(Pages::of(backup.progress()));
            match step {
                rusqlite::backup::StepResult::Done => break,
                rusqlite::backup::StepResult::More => std::thread::yield_now(),
                // Busy or locked: retried for a bounded time.
                _ => {
                    busy_waits += 1;
                    if busy_waits > LOCK_WAIT.as_millis() / 10 {
                        return Err("the database stayed locked during the backup".to_owned());
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
        drop(backup);
        drop(dst);
        Ok::<_, String>(())
    })();
    if let Err(reason) = result {
        // A half-written backup must not be mistaken for a good one later.
        let _ = std::fs::remove_file(&target);
        return Err(fail(reason));
    }
    // Hashing 300 MB takes a good part of a second; it runs on another core while the caller
    // goes on (adoption rebuilds the store meanwhile), and the caller waits for it in `finish`.
    let path = target.clone();
    let hashing = std::thread::spawn(move || {
        let (sha256, bytes) = seal(&path, &path)?;
        Ok(BackupFile {
            path,
            sha256,
            bytes,
        })
    });
    Ok(PendingBackup {
        path: target,
        hashing,
    })
}

/// Hashes the finished file at `file`, syncs it, and records its SHA-256 for `name` (the
/// path the file has, or will have once renamed) in `<name>.sha256`, written whole under a
/// temporary name and renamed, with the directory synced: after a power cut, either the
/// record is there and whole, or it is not there. Returns the digest and the size in bytes.
///
/// The backup must survive a power cut before the original is changed, so callers that go on
/// to change the original call this first.
pub(crate) fn seal(file: &Path, name: &Path) -> std::io::Result<(String, u64)> {
    let (sha256, bytes) = sha256_file(file)?;
    std::fs::File::open(file)?.sync_all()?;
    let base = name
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let sums = checksum_path(name);
    let mut partial = sums.clone().into_os_string();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    {
        let mut out = std::fs::File::create(&partial)?;
        std::io::Write::write_all(&mut out, format!("{sha256}  {base}\n").as_bytes())?;
        out.sync_all()?;
    }
    std::fs::rename(&partial, &sums)?;
    sync_dir(name)?;
    Ok((sha256, bytes))
}

/// Syncs the directory holding `path`, so a file created or renamed there survives a power cut.
pub(crate) fn sync_dir(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// A backup written and being hashed.
pub(crate) struct PendingBackup {
    path: PathBuf,
    hashing: std::thread::JoinHandle<std::io::Result<BackupFile>>,
}

impl PendingBackup {
    /// Waits for the hashing and removes the backup and its checksum.
    pub(crate) fn discard(self) {
        let _ = self.hashing.join();
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_file(checksum_path(&self.path));
    }

    /// Waits for the hash and its checksum file.
    pub(crate) fn finish(self) -> Result<BackupFile, SnapshotError> {
        let fail = |reason: String| SnapshotError::Write {
            path: self.path.clone(),
            reason,
        };
        match self.hashing.join() {
            Ok(Ok(file)) => Ok(file),
            Ok(Err(e)) => Err(fail(format!("cannot hash the backup: {e}"))),
            Err(_) => Err(fail("the hashing thread panicked".into())),
        }
    }
}

/// Checks the snapshot at `backup` against the SHA-256 recorded in `<backup>.sha256` and
/// returns it.
pub(crate) fn verify_checksum(backup: &Path) -> Result<String, SnapshotError> {
    let sums = checksum_path(backup);
    let recorded = std::fs::read_to_string(&sums).map_err(|e| SnapshotError::Checksum {
        path: sums.clone(),
        reason: e.to_string(),
    })?;
    let expected = recorded
        .split_whitespace()
        .next()
        .filter(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()))
        .ok_or_else(|| SnapshotError::Checksum {
            path: sums.clone(),
            reason: "it does not start with a SHA-256 in hex".into(),
        })?
        .to_ascii_lowercase();
    let (found, _) = sha256_file(backup).map_err(|e| SnapshotError::Checksum {
        path: backup.to_path_buf(),
        reason: e.to_string(),
    })?;
    if found != expected {
        return Err(SnapshotError::ChecksumMismatch {
            path: backup.to_path_buf(),
            expected,
            found,
        });
    }
    Ok(found)
}

/// The SHA-256 of a file and its size in bytes.
pub(crate) fn sha256_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        sha.update(&buf[..n]);
    }
    Ok((hex(&sha.finalize()), bytes))
}

/// The file that records a snapshot's SHA-256, in `sha256sum` format.
pub fn checksum_path(backup: &Path) -> PathBuf {
    let mut name = backup.as_os_str().to_owned();
    name.push(".sha256");
    PathBuf::from(name)
}
