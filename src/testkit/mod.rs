//! A test kit for applications and for teams testing adoption and sync: deterministic
//! generators of realistic store data.
//!
//! - [`demo`]: a demo auto-parts store and a day of its trading, made through the POS flows.
//! - [`legacy`]: stores of the old single-tenant POS (no `tenant_id`), as adoption finds them.
//!
//! Behind the `testkit` cargo feature (on by default, with `pos-node demo`): a terminal that
//! embeds the library turns it off with `default-features = false` and compiles neither the
//! generators nor their random-number crates.

pub mod central_conformance;
pub mod demo;
pub mod legacy;

mod reference;
