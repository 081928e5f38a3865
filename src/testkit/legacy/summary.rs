//! What the generator wrote.

/// What [`generate`](super::generate) wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacySummary {
    /// Every table of [`LEGACY_SCHEMA`](super::LEGACY_SCHEMA) in schema order with its row
    /// count (pending_operations is always empty).
    pub tables: Vec<(String, u64)>,
    /// The sum of the counts.
    pub total_rows: u64,
}

impl LegacySummary {
    /// The row count of `table`, if the legacy schema has it.
    pub fn rows(&self, table: &str) -> Option<u64> {
        self.tables
            .iter()
            .find(|(name, _)| name == table)
            .map(|(_, n)| *n)
    }
}
