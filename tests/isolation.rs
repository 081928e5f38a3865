//! Property: whatever sequence of operations three tenants run through the public API, nothing
//! one tenant does ever returns or changes another tenant's rows. Checked against a simple
//! model of each tenant's products and customers after every step.

mod common;

use std::collections::BTreeMap;

use common::*;
use pos_tenancy::catalog::{Customer, Product};
use pos_tenancy::{Actor, ConstraintKind, Error, ListQuery, RowId, Store, Tenant, TenantAccess};
use proptest::prelude::*;

const TENANTS: [&str; 3] = ["caps", "bolt", "gear"];

#[derive(Debug, Clone)]
enum Op {
    InsertProduct {
        t: usize,
        sku: u8,
        price: i64,
    },
    UpdateOwnProduct {
        t: usize,
        pick: usize,
        price: i64,
    },
    DeleteOwnProduct {
        t: usize,
        pick: usize,
    },
    InsertCustomer {
        t: usize,
        code: u8,
        email: u8,
    },
    /// Tenant `t` aims at a row of tenant `other` by id: get, update, delete.
    TouchOthersProduct {
        t: usize,
        other: usize,
        pick: usize,
        price: i64,
    },
    /// Tenant `t` sends a JSON payload that names tenant `other`.
    JsonNamingOther {
        t: usize,
        other: usize,
        code: u8,
    },
    /// Tenant `t` tries report SQL aimed at `other`'s rows.
    ReportAimedAtOther {
        t: usize,
        other: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let t = 0..TENANTS.len();
    prop_oneof![
        4 => (t.clone(), 0u8..12, 0i64..100_000).prop_map(|(t, sku, price)| Op::InsertProduct { t, sku, price }),
        2 => (t.clone(), any::<usize>(), 0i64..100_000).prop_map(|(t, pick, price)| Op::UpdateOwnProduct { t, pick, price }),
        1 => (t.clone(), any::<usize>()).prop_map(|(t, pick)| Op::DeleteOwnProduct { t, pick }),
        2 => (t.clone(), 0u8..8, 0u8..4).prop_map(|(t, code, email)| Op::InsertCustomer { t, code, email }),
        3 => (t.clone(), 1usize..3, any::<usize>(), 0i64..100_000)
            .prop_map(|(t, d, pick, price)| Op::TouchOthersProduct { t, other: (t + d) % 3, pick, price }),
        1 => (t.clone(), 1usize..3, 0u8..8).prop_map(|(t, d, code)| Op::JsonNamingOther { t, other: (t + d) % 3, code }),
        1 => (t, 1usize..3).prop_map(|(t, d)| Op::ReportAimedAtOther { t, other: (t + d) % 3 }),
    ]
}

#[derive(Default)]
struct Model {
    products: BTreeMap<RowId, Product>,
    customers: BTreeMap<RowId, Customer>,
}

fn pick<V: Clone>(map: &BTreeMap<RowId, V>, i: usize) -> Option<V> {
    (!map.is_empty())
        .then(|| map.values().nth(i % map.len()).cloned())
        .flatten()
}

fn all<R: pos_tenancy::Record>(h: &Tenant<'_>) -> Vec<R> {
    let mut out = Vec::new();
    let mut q = ListQuery::new().limit(7);
    loop {
        let page = h.list::<R>(&q).expect("list");
        out.extend(page.rows);
        match page.next {
            Some(n) => q = q.after(n),
            None => return out,
        }
    }
}

fn check(store: &Store, models: &[Model]) -> Result<(), TestCaseError> {
    for (i, t) in TENANTS.iter().enumerate() {
        let h = store.tenant(&tid(t)).expect("handle");
        let products: Vec<Product> = all(&h);
        let expected: Vec<&Product> = models[i].products.values().collect();
        prop_assert_eq!(
            products.iter().collect::<Vec<_>>(),
            expected,
            "{} products",
            t
        );
        let customers: Vec<Customer> = all(&h);
        prop_assert_eq!(
            customers.len(),
            models[i].customers.len(),
            "{} customers",
            t
        );
        let n = h
            .query("SELECT count(*) FROM products")
            .expect("report")
            .rows[0][0]
            .as_u64();
        prop_assert_eq!(n, Some(models[i].products.len() as u64));
        let tenants_seen = h
            .query("SELECT DISTINCT tenant_id FROM audit_log")
            .expect("report");
        prop_assert!(
            tenants_seen.rows.iter().all(|r| r[0] == *t),
            "{} audit leak",
            t
        );
    }
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let store = store_with(&TENANTS);
    let actors: Vec<Actor> = TENANTS
        .iter()
        .map(|t| {
            store
                .tenant(&tid(t))
                .and_then(|h| h.bootstrap_admin("owner", "Owner"))
                .expect("admin")
        })
        .collect();
    let mut models: Vec<Model> = TENANTS.iter().map(|_| Model::default()).collect();
    for op in ops {
        match op {
            Op::InsertProduct { t, sku, price } => {
                let h = store.tenant(&tid(TENANTS[t])).expect("handle");
                let p = product(&format!("SKU-{sku}"), price);
                let taken = models[t].products.values().any(|q| q.sku == p.sku);
                match h.insert(&actors[t], &p) {
                    Ok(()) => {
                        prop_assert!(!taken, "duplicate SKU accepted");
                        models[t].products.insert(p.id, p);
                    }
                    Err(Error::Constraint {
                        kind: ConstraintKind::Unique,
                        ..
                    }) => prop_assert!(taken),
                    Err(e) => return Err(TestCaseError::fail(format!("insert: {e}"))),
                }
            }
            Op::UpdateOwnProduct { t, pick: i, price } => {
                if let Some(mut p) = pick(&models[t].products, i) {
                    p.price_minor = price;
                    store
                        .tenant(&tid(TENANTS[t]))
                        .expect("h")
                        .update(&actors[t], &p)
                        .expect("update own");
                    models[t].products.insert(p.id, p);
                }
            }
            Op::DeleteOwnProduct { t, pick: i } => {
                if let Some(p) = pick(&models[t].products, i) {
                    store
                        .tenant(&tid(TENANTS[t]))
                        .expect("h")
                        .delete::<Product>(&actors[t], p.id)
                        .expect("delete own");
                    models[t].products.remove(&p.id);
                }
            }
            Op::InsertCustomer { t, code, email } => {
                let h = store.tenant(&tid(TENANTS[t])).expect("handle");
                let c = customer(
                    &format!("C-{code}"),
                    Some(&format!("shared{email}@example.com")),
                );
                let taken = models[t]
                    .customers
                    .values()
                    .any(|x| x.code == c.code || x.email == c.email);
                match h.insert(&actors[t], &c) {
                    Ok(()) => {
                        prop_assert!(!taken);
                        models[t].customers.insert(c.id, c);
                    }
                    Err(Error::Constraint {
                        kind: ConstraintKind::Unique,
                        ..
                    }) => prop_assert!(taken),
                    Err(e) => return Err(TestCaseError::fail(format!("customer: {e}"))),
                }
            }
            Op::TouchOthersProduct {
                t,
                other,
                pick: i,
                price,
            } => {
                let Some(theirs) = pick(&models[other].products, i) else {
                    continue;
                };
                let h = store.tenant(&tid(TENANTS[t])).expect("handle");
                prop_assert!(h.get::<Product>(theirs.id).expect("get").is_none());
                let mut forged = theirs.clone();
                forged.price_minor = price;
                let r = h.update(&actors[t], &forged);
                prop_assert!(matches!(r, Err(Error::NotFound { .. })), "update: {:?}", r);
                let r = h.delete::<Product>(&actors[t], theirs.id);
                prop_assert!(matches!(r, Err(Error::NotFound { .. })), "delete: {:?}", r);
                // Using the other tenant's actor on this handle is refused as well.
                let r = h.update(&actors[other], &forged);
                prop_assert!(
                    matches!(r, Err(Error::ActorTenantMismatch { .. })),
                    "actor: {:?}",
                    r
                );
            }
            Op::JsonNamingOther { t, other, code } => {
                let h = store.tenant(&tid(TENANTS[t])).expect("handle");
                let mut payload =
                    serde_json::to_value(customer(&format!("J-{code}"), None)).expect("json");
                payload["tenant_id"] = TENANTS[other].into();
                let r = h.insert_json(&actors[t], "customers", payload);
                prop_assert!(
                    matches!(r, Err(Error::TenantMismatch { .. })),
                    "json: {:?}",
                    r
                );
            }
            Op::ReportAimedAtOther { t, other } => {
                let h = store.tenant(&tid(TENANTS[t])).expect("handle");
                let sql = format!(
                    "SELECT sku FROM products WHERE tenant_id = '{}'",
                    TENANTS[other]
                );
                prop_assert!(h.query(&sql).expect("report").rows.is_empty());
                let direct = format!(
                    "SELECT sku FROM main.products WHERE tenant_id = '{}'",
                    TENANTS[other]
                );
                prop_assert!(h.query(&direct).is_err(), "base table read allowed");
            }
        }
        check(&store, &models)?;
    }
    prop_assert!(store.verify().expect("verify").is_ok());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn no_tenant_ever_sees_or_changes_another_tenants_rows(ops in prop::collection::vec(op(), 1..40)) {
        run(ops)?;
    }
}
