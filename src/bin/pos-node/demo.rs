//! `pos-node demo`: fill a tenant with a demo auto-parts store and ring up a day of sales.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pos_tenancy::catalog::User;
use pos_tenancy::pos::money::minor_per_major;
use pos_tenancy::testkit::demo::{fill, DemoOptions, DemoSummary};
use pos_tenancy::{Actor, ListQuery, Role, Tenant, TenantAccess, TenantId};

use crate::output::{print, print_json};
use crate::{open_existing, CliError, Outcome};

#[derive(Args)]
pub(crate) struct DemoArgs {
    /// The database file.
    #[arg(long)]
    db: PathBuf,
    /// The tenant to fill (its slug). With no products it first gets the demo catalog.
    #[arg(long)]
    tenant: String,
    /// Sales to ring up.
    #[arg(long)]
    sales: u32,
    /// Seed of the random stream: the same seed on the same data does the same things.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: DemoArgs) -> Result<Outcome, CliError> {
    let id: TenantId = args.tenant.parse()?;
    let store = open_existing(&args.db)?;
    let tenant = store.tenant(&id)?;
    let admin = admin(&tenant)?;
    let currency = tenant.settings()?.currency;
    let bar = progress_bar(args.sales);
    let options = DemoOptions {
        sales: args.sales,
        seed: args.seed,
    };
    let result = fill(&tenant, &admin, &options, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let summary = result?;
    if args.json {
        print_json(&summary)?;
    } else {
        print(|out| write_summary(out, &id, &currency, &summary))?;
    }
    Ok(Outcome::Ok)
}

/// An active admin of the tenant; a tenant with no user at all gets one.
fn admin(tenant: &Tenant<'_>) -> Result<Actor, CliError> {
    let admins = tenant.list::<User>(
        &ListQuery::new()
            .eq("role", Role::Admin)
            .eq("active", true)
            .limit(1),
    )?;
    if let Some(user) = admins.rows.first() {
        return Ok(tenant.actor(user.id)?);
    }
    let anyone = tenant.list::<User>(&ListQuery::new().limit(1))?;
    if !anyone.rows.is_empty() {
        return Err(CliError::Usage(format!(
            "tenant {} has users but no active admin to run the demo as",
            tenant.tenant_id()
        )));
    }
    Ok(tenant.bootstrap_admin("demo-admin", "Demo Admin")?)
}

/// A bar on stderr when it is a terminal; nothing otherwise, so pipes and logs stay clean.
fn progress_bar(sales: u32) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(u64::from(sales)), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} sales {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix("demo");
    bar
}

/// An amount in minor units as major units with the currency's decimals (`-12.50 USD`).
fn money(minor: i64, currency: &str) -> String {
    let per = minor_per_major(currency);
    let decimals = per.to_string().len().saturating_sub(1);
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    let per = per.unsigned_abs().max(1);
    if decimals == 0 {
        format!("{sign}{abs} {currency}")
    } else {
        format!(
            "{sign}{}.{:0decimals$} {currency}",
            abs / per,
            abs % per,
            decimals = decimals
        )
    }
}

fn write_summary(
    out: &mut impl Write,
    tenant: &TenantId,
    currency: &str,
    s: &DemoSummary,
) -> io::Result<()> {
    if s.catalog_created {
        writeln!(
            out,
            "{tenant}: demo catalog created: {} products in {} categories ({} fitment rows, \
             {} bins), {} customers with {} vehicles, {} loyalty and {} credit accounts, \
             {} gift cards, {} promotions, {} commission rules, {} deliveries{}",
            s.products,
            s.categories,
            s.fitments,
            s.inventory_rows,
            s.customers,
            s.vehicles,
            s.loyalty_accounts,
            s.credit_accounts,
            s.gift_cards_issued,
            s.promotions,
            s.commission_rules,
            s.stock_receipts,
            if s.tax_rate_added {
                ", sales tax 8.25 %"
            } else {
                ""
            }
        )?;
    } else {
        writeln!(out, "{tenant}: selling from the existing catalog")?;
    }
    writeln!(
        out,
        "{} attempts (seed {}): {} checkouts, {} gift cards sold, {} refunds, {} voids, \
         {} layaways opened ({} payments, {} completed), {} work orders",
        s.attempted,
        s.seed,
        s.checkouts,
        s.gift_cards_sold,
        s.refunds,
        s.voids,
        s.layaways_opened,
        s.layaway_payments,
        s.layaways_completed,
        s.work_orders
    )?;
    if s.restock_receipts > 0 {
        writeln!(
            out,
            "{} products restocked by deliveries between sales (below their reorder level)",
            s.restock_receipts
        )?;
    }
    if s.refused > 0 {
        let why: Vec<String> = s.refusals.iter().map(|(k, n)| format!("{k} {n}")).collect();
        writeln!(
            out,
            "{} refused by the business rules and skipped: {}",
            s.refused,
            why.join(", ")
        )?;
    }
    let payments: Vec<String> = s
        .payments_minor
        .iter()
        .map(|(m, a)| format!("{m} {}", money(*a, currency)))
        .collect();
    writeln!(
        out,
        "revenue {}; payments: {}; {} points earned, {} promotions applied",
        money(s.revenue_minor, currency),
        if payments.is_empty() {
            "none".to_owned()
        } else {
            payments.join(", ")
        },
        s.points_earned,
        s.promotions_used
    )
}
