//! Refunds and voids: a new sale whose lines reverse lines of the original (never edited).
