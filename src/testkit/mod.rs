//! A test kit for applications and for teams testing adoption and sync: deterministic
//! generators of realistic store data.
//!
//! - [`demo`]: a demo auto-parts store and a day of its trading, made through the POS flows.
//! - [`legacy`]: stores of the old single-tenant POS (no `tenant_id`), as adoption finds them.
//! - [`sync`]: a seeded world of a central store and terminals for sync conflict tests, with
//!   faults, a bounded quiesce and checkers.
//! - [`central_conformance`]: the promises every `CentralStore` backend keeps, as a suite.
//!
//! Behind the `testkit` cargo feature (on by default, with `pos-node demo`): a terminal that
//! embeds the library turns it off with `default-features = false` and compiles neither the
//! generators nor their random-number crates.

pub mod central_conformance;
pub mod demo;
pub mod legacy;
pub mod sync;

mod reference;
