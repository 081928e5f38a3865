//! Balances derived from append-only ledgers: stock on hand, gift card balances, loyalty points
//! and store credit owed.
//!
//! A balance is never a number two terminals overwrite: it is the sum of ledger rows, so merging
//! two terminals' work is a union of rows and no sale is lost. The four busiest sums are kept
//! beside their ledgers in balance tables (`stock_levels`, `gift_card_balances`,
//! `loyalty_balances`, `credit_balances`) by triggers on every insert, update and delete of the
//! ledger (migration V5), so a read is one index lookup however long the ledger grows.
//!
//! Each is declared on its ledger's catalog entry (`#[balance(...)]`), which makes the ledger's
//! [`TableDef::balance`](super::TableDef::balance), its [`KeptBalance`] impl (how the flows read
//! it, by the ledger's record type) and its place in [`BALANCES`](super::BALANCES) (what
//! `verify` checks against the ledger sums, [`crate::store::verify::Check::CachedBalance`], and
//! what adoption rebuilds).

use rusqlite::{params_from_iter, Connection, OptionalExtension, ToSql};
use serde::Serialize;

use super::Record;
use crate::ids::TenantId;
use crate::Result;

/// One balance table and the ledger it sums. Identifiers only, all fixed by the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BalanceDef {
    /// The balance table.
    pub table: &'static str,
    /// Its key columns after `tenant_id`, the same names in the ledger.
    pub keys: &'static [&'static str],
    /// The balance column.
    pub value: &'static str,
    /// The ledger table summed.
    pub ledger: &'static str,
    /// The ledger column summed.
    pub amount: &'static str,
}

/// A ledger whose sums are kept in a balance table. Implemented by the catalog for each ledger
/// with a `#[balance]`, so a read names the ledger's record type and cannot pick another
/// balance's table.
pub(crate) trait KeptBalance: Record {
    /// The balance kept beside this ledger.
    const BALANCE: &'static BalanceDef;
    /// `SELECT <value> FROM <table> WHERE tenant_id = ?1 AND <key> = ?...`, one parameter per
    /// key in [`BalanceDef::keys`] order after the tenant.
    const READ_SQL: &'static str;
}

impl BalanceDef {
    /// SQL counting the keys whose kept balance differs from the ledger sum: ledger keys with
    /// no balance row, and balance rows whose value is not the sum of their ledger rows.
    pub(crate) fn mismatch_sql(&self) -> String {
        let keys = self.keys.join(", ");
        let join: Vec<String> = self.keys.iter().map(|k| format!("l.{k} = b.{k}")).collect();
        format!(
            "SELECT (SELECT count(*) FROM (
                 SELECT DISTINCT tenant_id, {keys} FROM {ledger}
                 EXCEPT SELECT tenant_id, {keys} FROM {table}))
             + (SELECT count(*) FROM {table} b WHERE b.{value} IS NOT coalesce(
                 (SELECT sum(l.{amount}) FROM {ledger} l
                  WHERE l.tenant_id = b.tenant_id AND {join}), 0))",
            amount = self.amount,
            ledger = self.ledger,
            value = self.value,
            table = self.table,
            join = join.join(" AND "),
        )
    }

    /// SQL filling the (empty) balance table from its ledger in one pass: one row per key,
    /// the sum of its ledger rows. What the triggers would have written row by row, for a
    /// ledger copied in bulk with them dropped (adoption).
    pub(crate) fn rebuild_sql(&self) -> String {
        let keys = self.keys.join(", ");
        format!(
            "INSERT INTO {table} (tenant_id, {keys}, {value})
             SELECT tenant_id, {keys}, sum({amount}) FROM {ledger} GROUP BY tenant_id, {keys}",
            table = self.table,
            value = self.value,
            amount = self.amount,
            ledger = self.ledger,
        )
    }
}

/// Reads the balance kept beside ledger `L` for one key (values in [`BalanceDef::keys`] order),
/// 0 when the ledger has no row for it. The tenant is bound here, as `?1`.
pub(crate) fn read<L: KeptBalance>(
    conn: &Connection,
    tenant: &TenantId,
    key: &[&dyn ToSql],
) -> Result<i64> {
    let params = std::iter::once(tenant as &dyn ToSql).chain(key.iter().copied());
    Ok(conn
        .prepare_cached(L::READ_SQL)?
        .query_row(params_from_iter(params), |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{
        CreditTransaction, GiftCardTransaction, InventoryTransaction, LoyaltyTransaction, BALANCES,
    };
    use crate::store::install_schema;
    use crate::{RowId, Timestamp};
    use rusqlite::params;

    fn db() -> Result<Connection> {
        let conn = Connection::open_in_memory()?;
        install_schema(&conn, Timestamp::now())?;
        conn.execute_batch(
            "INSERT INTO tenants VALUES ('t', 'T', 'active', 'free', 1, 1, 'shared', '{}', '', '');
             INSERT INTO products (id, tenant_id, sku, name, price_minor, currency, created_at, updated_at)
             VALUES ('p', 't', 'S', 'N', 1, 'USD', '', '');",
        )?;
        Ok(conn)
    }

    #[test]
    fn each_balance_reads_its_own_table() {
        assert_eq!(InventoryTransaction::BALANCE.table, "stock_levels");
        assert_eq!(GiftCardTransaction::BALANCE.table, "gift_card_balances");
        assert_eq!(LoyaltyTransaction::BALANCE.table, "loyalty_balances");
        assert_eq!(CreditTransaction::BALANCE.table, "credit_balances");
        assert_eq!(
            InventoryTransaction::READ_SQL,
            "SELECT on_hand_milli FROM stock_levels WHERE tenant_id = ?1 AND product_id = ? \
             AND location = ?"
        );
        for b in BALANCES {
            let ledger = crate::catalog::table(b.ledger).map(|t| t.balance);
            assert_eq!(ledger, Some(Some(b)), "{}", b.table);
        }
    }

    /// Stock on hand of a product at a location, read as the flows read it.
    fn stock_on_hand(
        conn: &Connection,
        tenant: &TenantId,
        product: RowId,
        location: &str,
    ) -> Result<i64> {
        read::<InventoryTransaction>(conn, tenant, &[&product, &location])
    }

    fn mismatches(conn: &Connection) -> Result<i64> {
        let mut n = 0;
        for b in BALANCES {
            n += conn.query_row(&b.mismatch_sql(), [], |r| r.get::<_, i64>(0))?;
        }
        Ok(n)
    }

    #[test]
    fn triggers_keep_stock_equal_to_the_ledger_through_insert_update_and_delete() -> Result<()> {
        let conn = db()?;
        let tenant: TenantId = "t".parse()?;
        let product: RowId = "00000000-0000-7000-8000-000000000001".parse()?;
        conn.execute("UPDATE products SET id = ?1", [product])?;
        let put = |id: &str, q: i64| {
            conn.execute(
                "INSERT INTO inventory_transactions (id, tenant_id, product_id, location, kind,
                     quantity_milli, created_at) VALUES (?1, 't', ?2, 'main', 'receive', ?3, '')",
                params![id, product, q],
            )
        };
        put("a", 5_000)?;
        put("b", -2_000)?;
        assert_eq!(stock_on_hand(&conn, &tenant, product, "main")?, 3_000);
        conn.execute(
            "UPDATE inventory_transactions SET quantity_milli = 4000 WHERE id = 'a'",
            [],
        )?;
        conn.execute(
            "UPDATE inventory_transactions SET location = 'back' WHERE id = 'b'",
            [],
        )?;
        assert_eq!(stock_on_hand(&conn, &tenant, product, "main")?, 4_000);
        assert_eq!(stock_on_hand(&conn, &tenant, product, "back")?, -2_000);
        conn.execute("DELETE FROM inventory_transactions WHERE id = 'a'", [])?;
        assert_eq!(stock_on_hand(&conn, &tenant, product, "main")?, 0);
        assert_eq!(mismatches(&conn)?, 0);
        // A balance written by hand is caught.
        conn.execute("UPDATE stock_levels SET on_hand_milli = 7", [])?;
        assert_eq!(mismatches(&conn)?, 2);
        Ok(())
    }

    #[test]
    fn a_rebuild_writes_what_the_triggers_keep() -> Result<()> {
        let conn = db()?;
        conn.execute_batch(
            "INSERT INTO inventory_transactions (id, tenant_id, product_id, location, kind,
                 quantity_milli, created_at)
             VALUES ('a', 't', 'p', 'main', 'receive', 5000, ''),
                    ('b', 't', 'p', 'main', 'sale', -1500, ''),
                    ('c', 't', 'p', 'back', 'receive', 250, '');",
        )?;
        let kept: Vec<(String, i64)> = conn
            .prepare("SELECT location, on_hand_milli FROM stock_levels ORDER BY location")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        assert_eq!(kept, [("back".to_owned(), 250), ("main".to_owned(), 3_500)]);
        for b in BALANCES {
            conn.execute_batch(&format!("DELETE FROM {}", b.table))?;
            conn.execute_batch(&b.rebuild_sql())?;
        }
        let rebuilt: Vec<(String, i64)> = conn
            .prepare("SELECT location, on_hand_milli FROM stock_levels ORDER BY location")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        assert_eq!(rebuilt, kept);
        assert_eq!(mismatches(&conn)?, 0);
        Ok(())
    }
}
