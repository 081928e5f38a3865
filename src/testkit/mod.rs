//! A test kit for applications and for teams testing adoption and sync: deterministic
//! generators of realistic store data.
//!
//! - [`legacy`]: stores of the old single-tenant POS (no `tenant_id`), as adoption finds them.

pub mod central_conformance;
pub mod demo;

pub mod legacy;
