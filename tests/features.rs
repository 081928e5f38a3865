//! Feature switches (`TenantSettings::features`, `pos_tenancy::Feature`) through the public
//! API: each switch in both states (on: its flows work; off: a typed error naming the switch
//! and nothing written, or the part of a sale it covers left out), names outside the closed
//! list refused where settings are validated, what a feature wrote staying readable and
//! refundable once it is off, and a switch changed on the central server reaching a terminal
//! with a sync round.

use std::sync::Arc;

use pos_tenancy::catalog::*;
use pos_tenancy::pos::{
    Checkout, FlowError, GiftCardSale, LayawayOrder, LineItem, Pos, Refund, RefundTender, Tender,
    WorkOrderRequest,
};
use pos_tenancy::sync::{DirectTransport, SyncOptions, Syncer};
use pos_tenancy::{
    Actor, CentralError, CentralStore, Error, Feature, NewTenant, Plan, RowId, SettingsError,
    SqliteCentral, Store, Tenant, TenantAccess, TenantSettings, Timestamp,
};
use rusqlite::Connection;

type R<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// A node on a file of its own with one tenant, `caps`, on default settings.
struct Shop {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    store: Store,
}

fn shop() -> R<Shop> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("pos.db");
    let store = Store::open(&path)?;
    store.add_tenant(&NewTenant::new("caps".parse()?, "Caps Automotive").plan(Plan::Pro))?;
    Ok(Shop {
        _dir: dir,
        path,
        store,
    })
}

impl Shop {
    fn caps(&self) -> R<Tenant<'_>> {
        Ok(self.store.tenant(&"caps".parse()?)?)
    }

    /// The row count of every table of the file, the outbox's pending operations and the
    /// audit log included, read straight from the file.
    fn counts(&self) -> R<Vec<(String, i64)>> {
        let conn = Connection::open(&self.path)?;
        let names: Vec<String> = conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table'
                 AND name NOT LIKE 'sqlite_%' ORDER BY name",
            )?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            // Names come from the schema itself, quoted.
            let n: i64 = conn.query_row(
                &format!("SELECT count(*) FROM \"{}\"", name.replace('"', "\"\"")),
                [],
                |r| r.get(0),
            )?;
            out.push((name, n));
        }
        assert!(
            out.iter().any(|(t, _)| t == "pending_operations"),
            "the outbox is counted"
        );
        Ok(out)
    }

    /// Sets one switch through the node's settings API.
    fn switch(&self, admin: &Actor, feature: Feature, on: bool) -> R {
        let caps = self.caps()?;
        let mut settings = caps.settings()?;
        settings.set_feature(feature, on);
        caps.update_settings(admin, &settings)?;
        Ok(())
    }
}

/// Asserts that `flow` is refused with `FeatureOff` naming `feature` and writes nothing.
fn refused_by<T: std::fmt::Debug>(
    shop: &Shop,
    feature: Feature,
    flow: impl FnOnce() -> pos_tenancy::Result<T>,
) -> R {
    let before = shop.counts()?;
    let err = flow().expect_err("the flow must be refused");
    let message = err.to_string();
    match err {
        Error::Flow(FlowError::FeatureOff { feature: f, .. }) => assert_eq!(f, feature),
        other => panic!("expected the {feature} switch to refuse, got {other:?}"),
    }
    assert!(
        message.contains(feature.as_str()),
        "the message names the switch: {message}"
    );
    assert_eq!(shop.counts()?, before, "a refused flow wrote nothing");
    Ok(())
}

fn product(sku: &str, price: i64, category: Option<RowId>) -> Product {
    let now = Timestamp::now();
    Product {
        id: RowId::new(),
        sku: sku.into(),
        barcode: None,
        name: format!("Part {sku}"),
        description: None,
        brand: None,
        category_id: category,
        kind: "stocked".into(),
        price_minor: price,
        cost_minor: price / 2,
        currency: "USD".into(),
        taxable: true,
        reorder_level_milli: 0,
        image: None,
        active: true,
        created_at: now,
        updated_at: now,
    }
}

/// An admin, a stocked product at 10.00, a customer on a 10 % price level with loyalty and a
/// store credit account (limit 200.00).
struct Catalog {
    admin: Actor,
    pads: Product,
    customer: RowId,
    level: RowId,
    loyalty: RowId,
    credit: RowId,
}

fn catalog(t: &Tenant<'_>) -> R<Catalog> {
    let admin = t.bootstrap_admin("owner", "Owner")?;
    let now = Timestamp::now();
    let pads = product("PAD-1", 1_000, None);
    t.insert(&admin, &pads)?;
    t.receive_stock(&admin, pads.id, "main", 100_000, Some(500))?;
    let level = PriceLevel {
        id: RowId::new(),
        name: "Trade".into(),
        discount_ppm: 100_000,
        created_at: now,
    };
    t.insert(&admin, &level)?;
    let customer = Customer {
        id: RowId::new(),
        code: "C-1".into(),
        first_name: "Ana".into(),
        last_name: "Diaz".into(),
        company: None,
        email: None,
        phone: None,
        price_level_id: Some(level.id),
        tax_exempt: false,
        notes: None,
        created_at: now,
        updated_at: now,
    };
    t.insert(&admin, &customer)?;
    let loyalty = t.enroll_loyalty(&admin, customer.id, "L-1")?.id;
    let credit = CreditAccount {
        id: RowId::new(),
        customer_id: customer.id,
        credit_limit_minor: 20_000,
        currency: "USD".into(),
        active: true,
        created_at: now,
    };
    t.insert(&admin, &credit)?;
    Ok(Catalog {
        admin,
        pads,
        customer: customer.id,
        level: level.id,
        loyalty,
        credit: credit.id,
    })
}

fn cash(minor: i64) -> Tender {
    Tender::Cash {
        tendered_minor: minor,
    }
}

/// One unit of pads (10.00 list, 9.00 to the customer), paid with these tenders.
fn pads_sale(c: &Catalog, tenders: &[Tender]) -> Checkout {
    let mut sale = Checkout::new()
        .customer(c.customer)
        .line(LineItem::product(c.pads.id, 1_000));
    sale.tenders = tenders.to_vec();
    sale
}

#[test]
fn every_switch_is_on_by_default_and_has_a_stable_name() -> R {
    let settings = TenantSettings::new("Caps");
    for f in Feature::ALL {
        assert!(f.default_on(), "{f}");
        assert!(settings.feature(*f), "{f}");
        assert_eq!(f.as_str().parse::<Feature>()?, *f);
        assert_eq!(serde_json::to_value(f)?, f.as_str());
    }
    assert_eq!(
        Feature::WORDS,
        [
            "loyalty",
            "gift_cards",
            "store_credit",
            "layaways",
            "work_orders",
            "promotions",
            "commissions",
            "price_levels"
        ]
    );
    Ok(())
}

#[test]
fn switches_keep_their_wire_shape_a_map_of_name_to_bool() -> R {
    let text = r#"{"brand_name": "Caps", "currency": "USD", "locale": "en-US",
                   "features": {"gift_cards": false, "loyalty": true}}"#;
    let settings = TenantSettings::from_json(text)?;
    assert!(!settings.feature(Feature::GiftCards));
    assert!(settings.feature(Feature::Loyalty));
    assert!(
        settings.feature(Feature::Layaways),
        "not named: its default"
    );
    let json = serde_json::to_value(&settings)?;
    assert_eq!(
        json["features"],
        serde_json::json!({"gift_cards": false, "loyalty": true})
    );
    Ok(())
}

#[test]
fn an_unknown_switch_is_refused_by_validation_naming_it_and_the_known_ones() -> R {
    let mut settings = TenantSettings::new("Caps");
    settings.features.insert("giftcards".into(), false);
    let err = settings
        .validate()
        .expect_err("a misspelt switch is refused");
    let SettingsError::UnknownFeature { name, known } = &err else {
        panic!("expected UnknownFeature, got {err:?}");
    };
    assert_eq!(name, "giftcards");
    assert_eq!(*known, Feature::WORDS);
    let message = err.to_string();
    for word in ["giftcards", "gift_cards", "loyalty", "price_levels"] {
        assert!(message.contains(word), "{word} in {message}");
    }
    let json = r#"{"brand_name": "Caps", "currency": "USD", "locale": "en-US",
                   "features": {"layaway": false}}"#;
    assert!(matches!(
        TenantSettings::from_json(json),
        Err(SettingsError::UnknownFeature { ref name, .. }) if name == "layaway"
    ));
    Ok(())
}

#[test]
fn a_node_refuses_settings_with_an_unknown_switch_and_changes_nothing() -> R {
    let shop = shop()?;
    let caps = shop.caps()?;
    let admin = caps.bootstrap_admin("owner", "Owner")?;
    let before = caps.settings()?;
    let mut bad = before.clone();
    bad.features.insert("loyality".into(), false);
    let err = caps
        .update_settings(&admin, &bad)
        .expect_err("refused on the node");
    assert!(
        matches!(&err, Error::Settings(SettingsError::UnknownFeature { name, .. }) if name == "loyality"),
        "{err:?}"
    );
    assert_eq!(caps.settings()?, before, "the settings did not change");
    let err = shop
        .store
        .add_tenant(&NewTenant::new("spares".parse()?, "Spares").settings(bad))
        .expect_err("a new tenant too");
    assert!(matches!(
        err,
        Error::Settings(SettingsError::UnknownFeature { .. })
    ));
    assert!(shop.store.tenant(&"spares".parse()?).is_err());
    Ok(())
}

#[test]
fn the_central_server_refuses_settings_with_an_unknown_switch() -> R {
    let central = SqliteCentral::open_in_memory()?;
    let id: pos_tenancy::TenantId = "caps".parse()?;
    central.add_tenant(&NewTenant::new(id.clone(), "Caps"))?;
    let before = central.tenant(&id)?.settings;
    let mut bad = before.clone();
    bad.features.insert("promotion".into(), false);
    let err = central
        .set_settings(&id, &bad)
        .expect_err("refused centrally");
    assert!(
        matches!(&err, CentralError::Settings(SettingsError::UnknownFeature { name, .. }) if name == "promotion"),
        "{err:?}"
    );
    assert!(err.to_string().contains("promotions"), "{err}");
    assert_eq!(central.tenant(&id)?.settings, before);
    let mut good = before;
    good.set_feature(Feature::Promotions, false);
    assert!(!central
        .set_settings(&id, &good)?
        .settings
        .feature(Feature::Promotions));
    Ok(())
}

#[test]
fn settings_stored_with_a_switch_outside_the_list_stay_readable_and_the_next_write_must_drop_it(
) -> R {
    let shop = shop()?;
    let caps = shop.caps()?;
    let c = catalog(&caps)?;
    // Written before the list was closed, when any lowercase word passed.
    let legacy = r#"{"brand_name": "Caps", "currency": "USD", "locale": "en-US",
                     "features": {"beta-receipts": true, "gift_cards": false}}"#;
    Connection::open(&shop.path)?.execute(
        "UPDATE tenants SET settings = ?1 WHERE id = 'caps'",
        [legacy],
    )?;
    let settings = caps.settings()?;
    assert!(!settings.feature(Feature::GiftCards));
    caps.checkout(&c.admin, &pads_sale(&c, &[cash(2_000)]))?;
    refused_by(&shop, Feature::GiftCards, || {
        caps.issue_gift_card(&c.admin, "GC-1", 1_000, None, None)
    })?;
    let err = caps
        .update_settings(&c.admin, &settings)
        .expect_err("writing it back names the old switch");
    assert!(err.to_string().contains("beta-receipts"), "{err}");
    let mut cleaned = settings;
    cleaned.features.remove("beta-receipts");
    caps.update_settings(&c.admin, &cleaned)?;
    Ok(())
}

#[test]
fn loyalty_on_enrols_earns_and_redeems_and_off_refuses_and_earns_nothing() -> R {
    let shop = shop()?;
    let caps = shop.caps()?;
    let c = catalog(&caps)?;
    // On: 9.00 net earns 9 points; points pay.
    let sale = caps.checkout(&c.admin, &pads_sale(&c, &[cash(2_000)]))?;
    assert_eq!(sale.points_earned, 9);
    caps.checkout(
        &c.admin,
        &pads_sale(&c, &[Tender::Loyalty { points: 5 }, cash(2_000)]),
    )?;
    assert_eq!(caps.redeem_points(&c.admin, c.loyalty, 1)?, 9 + 8 - 5 - 1);
    let held = caps.loyalty_points(c.loyalty)?;

    shop.switch(&c.admin, Feature::Loyalty, false)?;
    let other = Customer {
        id: RowId::new(),
        code: "C-2".into(),
        first_name: "Bo".into(),
        last_name: "Lee".into(),
        company: None,
        email: None,
        phone: None,
        price_level_id: None,
        tax_exempt: false,
        notes: None,
        created_at: Timestamp::now(),
        updated_at: Timestamp::now(),
    };
    caps.insert(&c.admin, &other)?;
    refused_by(&shop, Feature::Loyalty, || {
        caps.enroll_loyalty(&c.admin, other.id, "L-2")
    })?;
    refused_by(&shop, Feature::Loyalty, || {
        caps.redeem_points(&c.admin, c.loyalty, 1)
    })?;
    refused_by(&shop, Feature::Loyalty, || {
        caps.checkout(
            &c.admin,
            &pads_sale(&c, &[Tender::Loyalty { points: 5 }, cash(2_000)]),
        )
    })?;
    let sale = caps.checkout(&c.admin, &pads_sale(&c, &[cash(2_000)]))?;
    assert_eq!(sale.points_earned, 0, "a sale earns no points while off");
    assert_eq!(
        caps.loyalty_points(c.loyalty)?,
        held,
        "points stay readable"
    );
    Ok(())
}

#[test]
fn gift_cards_on_are_issued_sold_topped_up_and_redeemed_and_off_every_one_is_refused() -> R {
    let shop = shop()?;
    let caps = shop.caps()?;
    let c = catalog(&caps)?;
    let card = caps.issue_gift_card(&c.admin, "GC-1", 5_000, None, None)?;
    assert_eq!(caps.top_up_gift_card(&c.admin, card.id, 1_000)?, 6_000);
    assert_eq!(caps.redeem_gift_card(&c.admin, card.id, 500)?, 5_500);
    caps.checkout(
        &c.admin,
        &pads_sale(
            &c,
            &[Tender::GiftCard {
                card_id: card.id,
                amount_minor: 900,
            }],
        ),
    )?;
    let sold = caps.sell_gift_card(
        &c.admin,
        &GiftCardSale::new("GC-2", 2_000).tender(cash(2_000)),
    )?;
    assert_eq!(caps.gift_card_balance(sold.card.id)?, 2_000);

    shop.switch(&c.admin, Feature::GiftCards, false)?;
    refused_by(&shop, Feature::GiftCards, || {
        caps.issue_gift_card(&c.admin, "GC-3", 5_000, None, None)
    })?;
    refused_by(&shop, Feature::GiftCards, || {
        caps.sell_gift_card(
            &c.admin,
            &GiftCardSale::new("GC-4", 2_000).tender(cash(2_000)),
        )
    })?;
    refused_by(&shop, Feature::GiftCards, || {
        caps.top_up_gift_card(&c.admin, card.id, 1_000)
    })?;
    refused_by(&shop, Feature::GiftCards, || {
        caps.redeem_gift_card(&c.admin, card.id, 100)
    })?;
    refused_by(&shop, Feature::GiftCards, || {
        caps.checkout(
            &c.admin,
            &pads_sale(
                &c,
                &[Tender::GiftCard {
                    card_id: card.id,
                    amount_minor: 900,
                }],
            ),
        )
    })?;
    assert_eq!(
        caps.gift_card_balance(card.id)?,
        4_600,
        "balances stay readable"
    );
    assert_eq!(caps.gift_card_balance(sold.card.id)?, 2_000);
    Ok(())
}

#[test]
fn a_sale_paid_by_gift_card_is_refunded_and_voided_onto_the_card_after_gift_cards_are_switched_off(
) -> R {
    let shop = shop()?;
    let caps = shop.caps()?;
    let c = catalog(&caps)?;
    let card = caps.issue_gift_card(&c.admin, "GC-1", 5_000, None, None)?;
    let by_card = |amount_minor| Tender::GiftCard {
        card_id: card.id,
        amount_minor,
    };
    // 9.00 to the customer; tax-free settings by default.
    let refunded = caps.checkout(&c.admin, &pads_sale(&c, &[by_card(900)]))?;
    let voided = caps.checkout(&c.admin, &pads_sale(&c, &[by_card(900)]))?;
    let in_cash = caps.checkout(&c.admin, &pads_sale(&c, &[by_card(900)]))?;
    assert_eq!(caps.gift_card_balance(card.id)?, 5_000 - 2_700);

    shop.switch(&c.admin, Feature::GiftCards, false)?;
    // Refunds are never refused by a switch: the money goes back onto the card it came from.
    let r = caps.refund(
        &c.admin,
        &Refund::new(refunded.sale.id, "wrong pads").tender(RefundTender::GiftCard {
            card_id: card.id,
            amount_minor: 900,
        }),
    )?;
    assert_eq!(r.sale.total_minor, -900);
    caps.void_sale(&c.admin, voided.sale.id, "rung up twice")?;
    assert_eq!(caps.gift_card_balance(card.id)?, 5_000 - 900);
    // The card holds it while the switch is off ...
    refused_by(&shop, Feature::GiftCards, || {
        caps.redeem_gift_card(&c.admin, card.id, 100)
    })?;
    // ... cash is the tender's own cap unless the store allows refunds to any tender ...
    let cash_back = Refund::new(in_cash.sale.id, "customer wants cash")
        .tender(RefundTender::Cash { amount_minor: 900 });
    let err = caps
        .refund(&c.admin, &cash_back)
        .expect_err("cash is capped");
    assert!(
        matches!(err, Error::Flow(FlowError::RefundExceedsTender { .. })),
        "{err:?}"
    );
    let mut settings = caps.settings()?;
    settings.rules.allow_refund_to_any_tender = true;
    caps.update_settings(&c.admin, &settings)?;
    caps.refund(&c.admin, &cash_back)?;
    assert_eq!(caps.gift_card_balance(card.id)?, 5_000 - 900);
    // ... and spendable again once the switch is back on.
    shop.switch(&c.admin, Feature::GiftCards, true)?;
    assert_eq!(caps.redeem_gift_card(&c.admin, card.id, 4_100)?, 0);
    Ok(())
}

#[test]
fn store_credit_on_charges_and_off_refuses_charges_but_still_takes_payments() -> R {
    let shop = shop()?;
    let caps = shop.caps()?;
    let c = catalog(&caps)?;
    assert_eq!(caps.charge_credit(&c.admin, c.credit, 1_000)?, 1_000);
    caps.checkout(
        &c.admin,
        &pads_sale(&c, &[Tender::StoreCredit { amount_minor: 900 }]),
    )?;
    assert_eq!(caps.credit_owed(c.credit)?, 1_900);

    shop.switch(&c.admin, Feature::StoreCredit, false)?;
    refused_by(&shop, Feature::StoreCredit, || {
        caps.charge_credit(&c.admin, c.credit, 1_000)
    })?;
    refused_by(&shop, Feature::StoreCredit, || {
        caps.checkout(
            &c.admin,
            &pads_sale(&c, &[Tender::StoreCredit { amount_minor: 900 }]),
        )
    })?;
    refused_by(&shop, Feature::StoreCredit, || {
        caps.sell_gift_card(
            &c.admin,
            &GiftCardSale::new("GC-1", 1_000)
                .customer(c.customer)
                .tender(Tender::StoreCredit {
                    amount_minor: 1_000,
                }),
        )
    })?;
    assert_eq!(
        caps.credit_owed(c.credit)?,
        1_900,
        "what is owed stays readable"
    );
    assert_eq!(
        caps.pay_credit(&c.admin, c.credit, 1_900)?,
        0,
        "a debt can always be paid off"
    );
    Ok(())
}

fn layaway(c: &Catalog) -> LayawayOrder {
    LayawayOrder::new(
        c.customer,
        vec![LineItem::product(c.pads.id, 2_000)],
        cash(900),
    )
}

#[test]
fn layaways_on_open_and_off_refuse_to_open_while_open_ones_run_to_their_end() -> R {
    let shop = shop()?;
    let caps = shop.caps()?;
    let c = catalog(&caps)?;
    let paid_off = caps.open_layaway(&c.admin, &layaway(&c))?;
    let given_up = caps.open_layaway(&c.admin, &layaway(&c))?;

    shop.switch(&c.admin, Feature::Layaways, false)?;
    refused_by(&shop, Feature::Layaways, || {
        caps.open_layaway(&c.admin, &layaway(&c))
    })?;
    // 18.00 in all, 9.00 down: the rest is paid and the goods go home.
    assert_eq!(
        caps.pay_layaway(&c.admin, paid_off.layaway.id, &cash(900))?,
        1_800
    );
    let done = caps.complete_layaway(&c.admin, paid_off.layaway.id)?;
    assert_eq!(done.layaway.status, "completed");
    let cancelled = caps.cancel_layaway(&c.admin, given_up.layaway.id)?;
    assert_eq!(cancelled.refund_minor, 900, "the deposit goes back");
    Ok(())
}

#[test]
fn work_orders_on_open_and_off_refuse_to_open_while_open_ones_are_finished_and_billed() -> R {
    let shop = shop()?;
    let caps = shop.caps()?;
    let c = catalog(&caps)?;
    let job = caps.open_work_order(&c.admin, &WorkOrderRequest::new(c.customer, "Brake job"))?;

    shop.switch(&c.admin, Feature::WorkOrders, false)?;
    refused_by(&shop, Feature::WorkOrders, || {
        caps.open_work_order(&c.admin, &WorkOrderRequest::new(c.customer, "Oil change"))
    })?;
    caps.add_part(&c.admin, job.id, c.pads.id, 1_000)?;
    caps.add_labour(&c.admin, job.id, "Fit pads", 1_000, 5_000)?;
    let billed = caps.complete_work_order(&c.admin, job.id, &[cash(10_000)])?;
    assert_eq!(billed.sale.total_minor, 900 + 5_000);
    Ok(())
}

fn promotion(code: Option<&str>, percent_ppm: i64) -> Promotion {
    let now = Timestamp::now();
    Promotion {
        id: RowId::new(),
        code: code.map(str::to_owned),
        name: code.unwrap_or("Everything").into(),
        kind: "percent".into(),
        value: percent_ppm,
        product_id: None,
        category_id: None,
        starts_at: Timestamp::from_millis(now.as_millis() - 60_000).expect("time"),
        ends_at: None,
        usage_limit: None,
        active: true,
    }
}

#[test]
fn promotions_on_discount_and_off_price_without_them_and_refuse_a_coupon_code() -> R {
    let shop = shop()?;
    let caps = shop.caps()?;
    let c = catalog(&caps)?;
    caps.insert(&c.admin, &promotion(None, 100_000))?;
    caps.insert(&c.admin, &promotion(Some("HALF"), 500_000))?;
    // On: 10 % automatically off 9.00; with the code, 50 %.
    let sale = caps.checkout(&c.admin, &pads_sale(&c, &[cash(2_000)]))?;
    assert_eq!(sale.sale.discount_minor, 90);
    assert_eq!(sale.promotions.len(), 1);
    let coded = caps.checkout(&c.admin, &pads_sale(&c, &[cash(2_000)]).code("HALF"))?;
    assert_eq!(coded.sale.discount_minor, 450);

    shop.switch(&c.admin, Feature::Promotions, false)?;
    let usage_before = caps.query("SELECT count(*) FROM promotion_usage")?.rows;
    let sale = caps.checkout(&c.admin, &pads_sale(&c, &[cash(2_000)]))?;
    assert_eq!(sale.sale.discount_minor, 0);
    assert!(sale.promotions.is_empty());
    assert_eq!(
        caps.query("SELECT count(*) FROM promotion_usage")?.rows,
        usage_before,
        "no promotion is used"
    );
    refused_by(&shop, Feature::Promotions, || {
        caps.checkout(&c.admin, &pads_sale(&c, &[cash(2_000)]).code("HALF"))
    })?;
    Ok(())
}

#[test]
fn commissions_on_are_earned_and_off_are_not_while_the_rules_stay() -> R {
    let shop = shop()?;
    let caps = shop.caps()?;
    let c = catalog(&caps)?;
    let rule = CommissionRule {
        id: RowId::new(),
        name: "Everyone".into(),
        user_id: None,
        category_id: None,
        rate_ppm: 100_000,
        active: true,
        created_at: Timestamp::now(),
    };
    caps.insert(&c.admin, &rule)?;
    let earned = caps.checkout(&c.admin, &pads_sale(&c, &[cash(2_000)]))?;
    assert_eq!(earned.commissions.len(), 1);
    assert_eq!(earned.commissions[0].amount_minor, 90);

    shop.switch(&c.admin, Feature::Commissions, false)?;
    let before = caps.query("SELECT count(*) FROM commissions")?.rows;
    let sale = caps.checkout(&c.admin, &pads_sale(&c, &[cash(2_000)]))?;
    assert!(sale.commissions.is_empty());
    assert_eq!(caps.query("SELECT count(*) FROM commissions")?.rows, before);
    assert!(caps.fetch::<CommissionRule>(rule.id)?.active);
    // A sale that earned while on still has its commission taken back by a refund.
    let refund = caps.refund(
        &c.admin,
        &Refund::new(earned.sale.id, "returned").tender(RefundTender::Cash { amount_minor: 900 }),
    )?;
    assert_eq!(refund.commissions.len(), 1);
    assert_eq!(refund.commissions[0].amount_minor, -90);
    Ok(())
}

#[test]
fn price_levels_on_discount_the_customer_and_off_sell_at_list_price() -> R {
    let shop = shop()?;
    let caps = shop.caps()?;
    let c = catalog(&caps)?;
    let sale = caps.checkout(&c.admin, &pads_sale(&c, &[cash(2_000)]))?;
    assert_eq!(sale.lines[0].unit_price_minor, 900);

    shop.switch(&c.admin, Feature::PriceLevels, false)?;
    let sale = caps.checkout(&c.admin, &pads_sale(&c, &[cash(2_000)]))?;
    assert_eq!(sale.lines[0].unit_price_minor, 1_000);
    assert_eq!(sale.sale.total_minor, 1_000);
    let customer: Customer = caps.fetch(c.customer)?;
    assert_eq!(customer.price_level_id, Some(c.level), "the level stays");
    Ok(())
}

/// A central server and one terminal of `caps`, synced in process.
struct Central {
    _dir: tempfile::TempDir,
    central: Arc<SqliteCentral>,
    transport: DirectTransport<SqliteCentral>,
    terminal: Store,
    options: SyncOptions,
}

impl Central {
    fn new() -> R<Self> {
        let dir = tempfile::tempdir()?;
        let central = Arc::new(SqliteCentral::open_in_memory()?);
        central.add_tenant(&NewTenant::new("caps".parse()?, "Caps Automotive"))?;
        let terminal = Store::open(dir.path().join("till.db"))?;
        terminal.add_tenant(&NewTenant::new("caps".parse()?, "Caps Automotive"))?;
        Ok(Self {
            _dir: dir,
            transport: DirectTransport::new(Arc::clone(&central)),
            central,
            terminal,
            options: SyncOptions::default(),
        })
    }

    fn sync(&self) -> R<pos_tenancy::sync::RoundReport> {
        let syncer = Syncer::new(&self.terminal, &self.transport, &self.options);
        Ok(syncer.round(&"caps".parse()?, "token")?)
    }

    fn switch_centrally(&self, feature: Feature, on: bool) -> R {
        let id = "caps".parse()?;
        let mut settings = self.central.tenant(&id)?.settings;
        settings.set_feature(feature, on);
        self.central.set_settings(&id, &settings)?;
        Ok(())
    }
}

#[test]
fn a_switch_changed_centrally_changes_a_terminals_answer_after_a_sync_round() -> R {
    let world = Central::new()?;
    let caps = world.terminal.tenant(&"caps".parse()?)?;
    let admin = caps.bootstrap_admin("owner", "Owner")?;
    world.sync()?;
    let now = Timestamp::now();
    let customer = Customer {
        id: RowId::new(),
        code: "C-1".into(),
        first_name: "Ana".into(),
        last_name: "Diaz".into(),
        company: None,
        email: None,
        phone: None,
        price_level_id: None,
        tax_exempt: false,
        notes: None,
        created_at: now,
        updated_at: now,
    };
    caps.insert(&admin, &customer)?;
    caps.open_work_order(&admin, &WorkOrderRequest::new(customer.id, "Brake job"))?;

    world.switch_centrally(Feature::WorkOrders, false)?;
    // Until the terminal syncs, it still answers by the settings it holds.
    assert!(caps.settings()?.feature(Feature::WorkOrders));
    let report = world.sync()?;
    assert!(report.settings_changed);
    assert!(!caps.settings()?.feature(Feature::WorkOrders));
    let err = caps
        .open_work_order(&admin, &WorkOrderRequest::new(customer.id, "Oil change"))
        .expect_err("switched off centrally");
    assert!(
        matches!(
            err,
            Error::Flow(FlowError::FeatureOff {
                feature: Feature::WorkOrders,
                ..
            })
        ),
        "{err:?}"
    );

    world.switch_centrally(Feature::WorkOrders, true)?;
    assert!(world.sync()?.settings_changed);
    caps.open_work_order(&admin, &WorkOrderRequest::new(customer.id, "Oil change"))?;
    Ok(())
}

#[test]
fn pos_node_tenant_show_prints_every_switch_with_its_state() -> R {
    let shop = shop()?;
    let caps = shop.caps()?;
    let admin = caps.bootstrap_admin("owner", "Owner")?;
    shop.switch(&admin, Feature::GiftCards, false)?;
    let db = shop.path.display().to_string();
    drop(caps);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pos-node"))
        .args(["tenant", "show", "--db", &db, "--id", "caps"])
        .output()?;
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout)?;
    let line = text
        .lines()
        .find(|l| l.starts_with("features:"))
        .unwrap_or_else(|| panic!("no features line in {text}"));
    assert!(line.contains("gift_cards off"), "{line}");
    for f in Feature::ALL.iter().filter(|f| **f != Feature::GiftCards) {
        assert!(line.contains(&format!("{f} on")), "{f} in {line}");
    }
    Ok(())
}
