//! Two tills of one shop, offline, sell the same last oil filter and each reprice it; then they
//! sync. Prints what each till held before, what the merge did, and the conflicts recorded.
//!
//! Run with `cargo run --example two_terminals_conflict [-- SEED]`.

use std::error::Error;

use pos_tenancy::catalog::Product;
use pos_tenancy::pos::{Checkout, LineItem, Pos, Tender};
use pos_tenancy::testkit::sync::World;
use pos_tenancy::{TenantAccess, TenantId};

fn main() -> Result<(), Box<dyn Error>> {
    let seed = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let caps: TenantId = "caps".parse()?;
    let mut world = World::builder(seed).tenant("caps", 2).build()?;
    let admin = world.admin("caps")?;
    let (a, b) = (world.terminal("caps", 0), world.terminal("caps", 1));
    let filter = world.product(a, &admin, "OF-100", 1_299, 1_000)?;

    world.offline(a);
    world.offline(b);
    for (name, till, price) in [("till 1", a, 1_349), ("till 2", b, 1_399)] {
        let handle = world.store(till).tenant(&caps)?;
        let me = handle.actor(admin.user_id())?;
        handle.checkout(
            &me,
            &Checkout::new()
                .line(LineItem::product(filter, 1_000))
                .tender(Tender::Cash {
                    tendered_minor: 2_000,
                }),
        )?;
        let mut p: Product = handle.fetch(filter)?;
        p.price_minor = price;
        handle.update(&me, &p)?;
        println!(
            "{name} offline: sold the last OF-100, stock now {}, price {}",
            handle.stock_on_hand(filter, "main")? / 1000,
            price
        );
        // The second till's edit comes a moment later.
        std::thread::sleep(std::time::Duration::from_millis(2));
    }

    world.online(a);
    world.online(b);
    world.quiesce()?;
    world.check_all()?;
    println!("\nafter sync (both tills checked: same rows, balances = ledgers, conflicts alike):");
    for (name, till) in [("till 1", a), ("till 2", b)] {
        let handle = world.store(till).tenant(&caps)?;
        let p: Product = handle.fetch(filter)?;
        println!(
            "  {name}: {} sales, OF-100 stock {}, price {}",
            handle.query("SELECT count(*) FROM sales")?.rows[0][0],
            handle.stock_on_hand(filter, "main")? / 1000,
            p.price_minor
        );
    }
    println!("\nwhat the merge did:");
    println!("  both sales kept (a ledger merges by union; stock is the sum, so it went below 0)");
    println!("  the later price stayed (last writer wins per column, by hybrid logical clock)");
    println!("\nconflicts recorded for a person, the same on both tills:");
    let handle = world.store(a).tenant(&caps)?;
    for row in handle
        .query("SELECT kind, table_name, column_name, local_value, remote_value FROM sync_conflicts ORDER BY kind")?
        .to_objects()
    {
        println!("  {}", serde_json::to_string(&row)?);
    }
    Ok(())
}
