//! A test kit for applications and for teams testing adoption and sync: deterministic
//! generators of realistic store data.

pub mod legacy;
