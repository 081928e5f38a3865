//! The background checkpoint: a thread that copies a database file's write-ahead log into the
//! file on a timer, so that no commit pays for a checkpoint's syncs and a quiet terminal's
//! commits still reach the file within [`CHECKPOINT_INTERVAL`].
//!
//! Invariants: the thread never creates a file (the store opened it already), never waits for
//! or blocks a reader or a writer (`PASSIVE`), and is stopped and joined when its handle drops,
//! so a dropped [`Store`](super::Store) leaves no connection of its own behind.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// How often a file store's background thread copies the write-ahead log into the database
/// file (a checkpoint), syncing both.
///
/// With `synchronous=NORMAL` the log is synced only at checkpoints, so after a power cut or an
/// OS crash the commits since the last one may be lost (whole, never torn); an application
/// crash loses nothing. Checkpointing on a timer bounds that window by time: at most this long
/// of sales, however quiet the terminal (a page count alone left a quiet till's morning sales
/// unsynced until enough pages piled up). And no sale waits for a checkpoint's syncs: SQLite
/// runs its automatic checkpoint inside the commit that crosses the page count, which made a
/// checkout take 1.25 ms instead of about 0.5 ms here.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(250);

/// A thread that checkpoints a database file's write-ahead log every interval, on a connection
/// of its own (SQLite's `PRAGMA wal_checkpoint(PASSIVE)`), until dropped. Every file
/// [`Store`](super::Store) runs one; tools that write a store's file through connections of
/// their own can run one too, so that their commits do not wait for checkpoints either.
pub struct BackgroundCheckpoint {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundCheckpoint {
    /// Starts checkpointing `path` every `interval`. `None` if the thread cannot be started
    /// (a store then relies on [`WAL_AUTOCHECKPOINT`](super::WAL_AUTOCHECKPOINT) alone).
    pub fn start(path: impl Into<PathBuf>, interval: Duration) -> Option<Self> {
        let path = path.into();
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("pos-checkpoint".into())
            .spawn(move || {
                // Never creates the file: the store opened it already.
                let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let Ok(conn) = Connection::open_with_flags(&path, flags) else {
                    return;
                };
                let (lock, wake) = &*flag;
                let Ok(mut stopped) = lock.lock() else {
                    return;
                };
                // The flag is read before every wait: a stop signalled while the connection
                // was opening would otherwise wait out a whole interval (a lost wakeup).
                while !*stopped {
                    let Ok((guard, _)) = wake.wait_timeout(stopped, interval) else {
                        return;
                    };
                    stopped = guard;
                    if *stopped {
                        return;
                    }
                    // PASSIVE never waits for, nor blocks, a reader or a writer; what it
                    // cannot copy now, the next round copies. A failure (a file gone
                    // read-only, say) is the next commit's to report.
                    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                }
            })
            .ok()?;
        Some(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl std::fmt::Debug for BackgroundCheckpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackgroundCheckpoint")
            .finish_non_exhaustive()
    }
}

impl Drop for BackgroundCheckpoint {
    fn drop(&mut self) {
        let (lock, wake) = &*self.stop;
        if let Ok(mut stopped) = lock.lock() {
            *stopped = true;
        }
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::tenant::settings::NewTenant;
    use crate::Result;

    #[test]
    fn commits_reach_the_database_file_without_a_checkpoint_in_any_commit() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("node.db");
        // Far above what these writes fill: only the background thread can checkpoint them.
        let store = Store::builder().wal_autocheckpoint(1_000_000).open(&path)?;
        let size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let before = size();
        for i in 0..50 {
            store.add_tenant(&NewTenant::new(format!("t{i}").parse()?, "T"))?;
        }
        // Bounded wait: forty intervals.
        let mut grown = false;
        for _ in 0..40 {
            std::thread::sleep(CHECKPOINT_INTERVAL);
            if size() > before {
                grown = true;
                break;
            }
        }
        assert!(grown, "the database file never received the log's pages");
        drop(store);
        // The thread is joined on drop and nothing is left open: the log is gone.
        assert!(!dir.path().join("node.db-wal").exists());
        Ok(())
    }
}
