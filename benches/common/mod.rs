//! What the benches share: the tenant, the product they sell, environment knobs, and the
//! process's CPU time and the machine's load, printed beside wall time on a shared machine.
//! Each bench uses a part of it.
#![allow(dead_code)]

use std::time::Duration;

use pos_tenancy::catalog::Product;
use pos_tenancy::{RowId, TenantId, Timestamp};

pub fn caps() -> TenantId {
    "caps".parse().expect("valid tenant slug")
}

/// A whole number from the environment (`1_000_000` allowed), or `default`.
pub fn env_count(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// The `n`th product of a bench catalog: stocked, taxable, USD.
pub fn product(n: usize) -> Product {
    let now = Timestamp::now();
    Product {
        id: RowId::new(),
        sku: format!("SKU-{n:06}"),
        barcode: Some(format!("{n:013}")),
        name: format!("Brake pad set {n:06}"),
        description: None,
        brand: Some("Bosch".into()),
        category_id: None,
        kind: "stocked".into(),
        price_minor: 1_000 + (n as i64 % 97) * 37,
        cost_minor: 600,
        currency: "USD".into(),
        taxable: true,
        reorder_level_milli: 2_000,
        image: None,
        active: true,
        created_at: now,
        updated_at: now,
    }
}

/// User and system time of the whole process (`/proc/self/stat`, clock ticks of 10 ms).
pub fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime: fields 14 and 15 of the line, 11 and 12 counted after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// The load average over 1, 5 and 15 minutes.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}
