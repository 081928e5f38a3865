//! A generator of single-tenant legacy stores (placeholder, being written).
