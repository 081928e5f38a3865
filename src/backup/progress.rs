//! How far a copy has come, for a progress bar. SQLite's online backup copies a database page
//! by page, and the total can change while it runs (another connection may grow the file), so
//! each report carries both counts.

/// Pages of a database copied so far, out of the pages it has now (a page is 4 KiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pages {
    /// Pages copied.
    pub done: u64,
    /// Pages in all.
    pub total: u64,
}

impl Pages {
    /// The counts of a running backup.
    pub(crate) fn of(progress: rusqlite::backup::Progress) -> Self {
        let total = u64::try_from(progress.pagecount).unwrap_or(0);
        let done = total.saturating_sub(u64::try_from(progress.remaining).unwrap_or(0));
        Self { done, total }
    }
}
