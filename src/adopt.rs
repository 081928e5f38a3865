//! Adoption of a legacy single-tenant store in place (being written).
