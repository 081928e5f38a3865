//! Master data: staff and devices, the catalogue with its stock and fitment, customers with
//! their vehicles and accounts, promotions and commission rules, gift cards, and the backup
//! setup, all made before the first trading day.

use rand::seq::SliceRandom;
use rand::Rng;
use uuid::Uuid;

use super::{
    CreditRec, CustomerRec, Gen, GiftRec, LoyaltyRec, ProductKind, ProductRec, PromoRec, RuleRec,
    UserRec, VehicleRec,
};
use crate::testkit::legacy::data::{
    CATEGORIES, COMMISSION_RULES, CUSTOMER_NOTES, PROMOTIONS, SERVICE_CATEGORY,
};
use crate::testkit::legacy::schema::T;
use crate::testkit::legacy::values::{oid, ots, Id, Ts, CURRENCY};
use crate::testkit::legacy::Result;
use crate::testkit::reference::{ean13, DAY_MS, HOUR_MS, LEGACY, MINUTE_MS, VIN_CHARS};

impl Gen<'_> {
    pub(super) fn staff_and_devices(&mut self) -> Result<()> {
        let t0 = self.span.start + 4 * HOUR_MS;
        let fixed: [(&str, &str, &str, bool, bool); 5] = [
            ("owner", "María José Núñez", "admin", true, false),
            ("jmueller", "Jürgen Müller", "manager", true, true),
            ("akowalski", "Anna Kowalski", "cashier", true, true),
            ("tsato", "佐藤 健", "cashier", true, true),
            ("loconnor", "Liam O'Connor", "cashier", false, false),
        ];
        for i in 0..self.plan.users {
            let t = t0 + i as i64 * 1_000;
            let id = self.id(t);
            let (username, display, role, active, commission) = match fixed.get(i) {
                Some(&(u, d, r, a, c)) => (u.to_owned(), d.to_owned(), r, a, c),
                None => {
                    let (first, _) = self.pick(LEGACY.first_names);
                    let (last, _) = self.pick(LEGACY.last_names);
                    let role = if i % 4 == 0 { "manager" } else { "cashier" };
                    let active = self.pct(85);
                    let commission = self.pct(50);
                    (
                        format!("staff{i}"),
                        format!("{first} {last}"),
                        role,
                        active,
                        commission,
                    )
                }
            };
            let email = (i != 4 && self.pct(85)).then(|| format!("{username}@store.example"));
            let pin = (i != 4).then(|| format!("sha256${}", self.hex(64)));
            let updated = if self.pct(30) { self.later(t) } else { t };
            self.w.put(
                T::Users,
                &[
                    &Id(id),
                    &username,
                    &display,
                    &email,
                    &role,
                    &pin,
                    &active,
                    &Ts(t),
                    &Ts(updated),
                ],
            )?;
            self.users.push(UserRec { id, commission });
        }
        for i in 0..self.plan.devices {
            let t = t0 + 30 * MINUTE_MS + i as i64 * 1_000;
            let id = self.id(t);
            let (name, kind, location, active) = match i {
                0 => ("Till 1".to_owned(), "terminal", Some("Front counter"), true),
                1 => ("Till 2".to_owned(), "terminal", Some("Front counter"), true),
                2 => ("Back office PC".to_owned(), "back_office", None, true),
                3 => ("Old till".to_owned(), "terminal", Some("Werkstatt"), false),
                _ if i % 2 == 0 => (format!("Till {i}"), "terminal", Some("Annex"), true),
                _ => (format!("Tablet {i}"), "mobile", None, true),
            };
            let last_seen = if active {
                Some(self.between(self.span.end - DAY_MS, self.span.end))
            } else {
                None
            };
            self.w.put(
                T::Devices,
                &[
                    &Id(id),
                    &name,
                    &kind,
                    &location,
                    &Ts(t),
                    &ots(last_seen),
                    &active,
                ],
            )?;
            self.devices.push(id);
            if kind != "back_office" && active {
                self.tills.push(id);
            }
        }
        let levels = [
            ("Retail", 0),
            ("Trade", 100_000),
            ("Fleet", 150_000),
            ("Mechanic – Stammkunde", 200_000),
        ];
        for (i, (name, ppm)) in levels.into_iter().enumerate() {
            let t = t0 + 45 * MINUTE_MS + i as i64 * 1_000;
            let id = self.id(t);
            self.w
                .put(T::PriceLevels, &[&Id(id), &name, &ppm, &Ts(t)])?;
            self.price_levels.push((id, ppm));
        }
        Ok(())
    }

    pub(super) fn catalogue(&mut self) -> Result<()> {
        let t0 = self.span.start + 4 * HOUR_MS + 50 * MINUTE_MS;
        for (i, c) in CATEGORIES.iter().enumerate() {
            let t = t0 + i as i64 * 1_000;
            let id = self.id(t);
            let parent = c.parent.map(|p| Id(self.categories[p]));
            self.w
                .put(T::ProductCategories, &[&Id(id), &c.name, &parent, &Ts(t)])?;
            self.categories.push(id);
        }
        let n = self.plan.products;
        let n_services = (n * 3 / 100).max(3);
        let with_image = (n / 200).max(3);
        let part_categories: Vec<usize> = (0..CATEGORIES.len())
            .filter(|&c| c != SERVICE_CATEGORY)
            .collect();
        let t0 = self.span.start + 5 * HOUR_MS;
        for i in 0..n {
            let created = t0 + i as i64 * (2 * HOUR_MS) / n as i64;
            let id = self.id(created);
            let service = i < n_services;
            let category = if service {
                SERVICE_CATEGORY
            } else {
                self.pick(&part_categories)
            };
            let cat = &CATEGORIES[category];
            let (base, fluid) = if service {
                cat.items[i % cat.items.len()]
            } else {
                self.pick(cat.items)
            };
            let kind = if service {
                ProductKind::Service
            } else if self.pct(7) {
                ProductKind::NonStocked
            } else {
                ProductKind::Stocked
            };
            let sku = format!("{}-{:06}", cat.sku_prefix, i + 1);
            let name = if service {
                base.to_owned()
            } else {
                format!("{base} {}", self.between(100, 1000))
            };
            let barcode = (!service && self.pct(85)).then(|| ean13(400_000_000_000 + i as u64));
            let description = self.pct(60).then(|| format!("{name} – {}", cat.name));
            let brand = (!service && self.pct(90)).then(|| self.pick(LEGACY.brands));
            let category_id = (!self.pct(5) || service).then(|| self.categories[category]);
            let price = if service {
                self.between(3_000, 15_000)
            } else if fluid {
                self.between(600, 2_500)
            } else {
                let u: f64 = self.rng.random();
                (299.0 * (u * 5.0).exp()) as i64
            };
            let cost = price * self.between(45, 75) / 100;
            let taxable = !service || self.pct(50);
            let reorder = if kind == ProductKind::Stocked {
                1_000 * self.between(0, 6)
            } else {
                0
            };
            let image = (i >= n_services && i < n_services + with_image).then(|| {
                let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
                let len = self.between(100, 600) as usize;
                png.extend((0..len).map(|_| self.rng.random::<u8>()));
                png
            });
            let active = service || self.pct(95);
            let updated = if self.pct(30) {
                self.later(created)
            } else {
                created
            };
            let kind_text = match kind {
                ProductKind::Stocked => "stocked",
                ProductKind::NonStocked => "non_stocked",
                ProductKind::Service => "service",
            };
            self.w.put(
                T::Products,
                &[
                    &Id(id),
                    &sku,
                    &barcode,
                    &name,
                    &description,
                    &brand,
                    &oid(category_id),
                    &kind_text,
                    &price,
                    &cost,
                    &CURRENCY,
                    &taxable,
                    &reorder,
                    &image,
                    &active,
                    &Ts(created),
                    &Ts(updated),
                ],
            )?;
            let warehouse = kind == ProductKind::Stocked && self.pct(10);
            self.products.push(ProductRec {
                id,
                name,
                kind,
                category,
                price,
                cost,
                taxable,
                fluid,
                warehouse,
            });
            match kind {
                ProductKind::Service => self.services.push(i),
                ProductKind::Stocked => {
                    self.stocked.push(i);
                    self.popular.push(i);
                    if warehouse {
                        self.stored.push(i);
                    }
                }
                ProductKind::NonStocked => self.popular.push(i),
            }
        }
        self.popular.shuffle(&mut self.rng);
        // Stock rows, opening counts and fitment of stocked parts.
        let admin = self.users[0].id;
        let count_at = self.span.start + 6 * HOUR_MS;
        for k in 0..self.stocked.len() {
            let p = self.stocked[k];
            let locations: &[&str] = if self.products[p].warehouse {
                &["main", "warehouse"]
            } else {
                &["main"]
            };
            for &location in locations {
                let t = count_at + self.between(0, HOUR_MS);
                let id = self.id(t);
                let bin = (location == "main" && self.pct(80)).then(|| {
                    format!(
                        "{}-{:02}-{}",
                        char::from(b'A' + self.rng.random_range(0..8u8)),
                        self.between(1, 40),
                        self.between(1, 6)
                    )
                });
                let reorder = 1_000 * self.between(0, 6);
                let reorder_qty = 1_000 * self.between(0, 20);
                self.w.put(
                    T::Inventory,
                    &[
                        &Id(id),
                        &Id(self.products[p].id),
                        &location,
                        &bin,
                        &reorder,
                        &reorder_qty,
                        &Ts(t),
                    ],
                )?;
                let qty = if self.products[p].fluid {
                    500 * self.between(40, 400)
                } else {
                    1_000 * self.between(2, 40)
                };
                let tx = self.id(t + 1);
                self.w.put(
                    T::InventoryTransactions,
                    &[
                        &Id(tx),
                        &Id(self.products[p].id),
                        &location,
                        &"count",
                        &qty,
                        &Some(self.products[p].cost),
                        &Some("opening stock count"),
                        &None::<Id>,
                        &Some(Id(admin)),
                        &Ts(t + 1),
                    ],
                )?;
            }
            let fits = [0, 1, 1, 2, 2, 3][self.below(6)];
            for _ in 0..fits {
                let t = self.span.start + 7 * HOUR_MS + self.between(0, HOUR_MS);
                let id = self.id(t);
                let (make, _, models) = self.pick(LEGACY.makes);
                let model = self.pick(models);
                let from = self.between(1975, 2023);
                let to = (from + self.between(0, 9)).min(2026);
                let engine = self.pct(60).then(|| self.pick(LEGACY.engines));
                let notes = self.pct(15).then(|| {
                    self.pick(&["Except AWD", "Nur mit Sportfahrwerk", "Solo motor diésel"])
                });
                self.w.put(
                    T::FitmentData,
                    &[
                        &Id(id),
                        &Id(self.products[p].id),
                        &make,
                        &model,
                        &from,
                        &to,
                        &engine,
                        &notes,
                    ],
                )?;
            }
        }
        Ok(())
    }

    pub(super) fn customer_base(&mut self) -> Result<()> {
        let n = self.plan.customers;
        // Half the customers came with the store (imported on day one), the rest sign up
        // over the period; creation order is index order.
        let imported = n.div_ceil(2);
        let import_at = self.span.start + 6 * HOUR_MS;
        let signup_from = self.span.start + 9 * HOUR_MS;
        let signup_span = (self.span.end - 2 * HOUR_MS - signup_from).max(1);
        for i in 0..n {
            let created = if i < imported {
                import_at + i as i64 * HOUR_MS / imported as i64
            } else {
                signup_from + (i - imported) as i64 * signup_span / (n - imported) as i64
            };
            let id = self.id(created);
            let (first, first_ascii) = self.pick(LEGACY.first_names);
            let (last, last_ascii) = self.pick(LEGACY.last_names);
            let code = format!("C-{:06}", i + 1);
            // The first customer is a trade account with everything, so small stores
            // still exercise every table.
            let anchor = i == 0;
            let company = if anchor {
                Some(LEGACY.companies[0])
            } else {
                self.pct(15).then(|| self.pick(LEGACY.companies))
            };
            let email = (anchor || self.pct(70))
                .then(|| format!("{first_ascii}.{last_ascii}{}@example.com", i + 1));
            let phone = self.pct(80).then(|| {
                format!(
                    "+1-555-{:03}-{:04}",
                    self.between(100, 1000),
                    self.between(0, 10_000)
                )
            });
            let level = (anchor || self.pct(25)).then(|| {
                let k = self.below(self.price_levels.len());
                self.price_levels[k]
            });
            let tax_exempt = self.pct(3);
            let notes = self.pct(10).then(|| self.pick(CUSTOMER_NOTES));
            let updated = if self.pct(20) {
                self.later(created)
            } else {
                created
            };
            self.w.put(
                T::Customers,
                &[
                    &Id(id),
                    &code,
                    &first,
                    &last,
                    &company,
                    &email,
                    &phone,
                    &oid(level.map(|(l, _)| l)),
                    &tax_exempt,
                    &notes,
                    &Ts(created),
                    &Ts(updated),
                ],
            )?;
            let vehicles = if anchor {
                2
            } else {
                [0, 0, 0, 1, 1, 1, 1, 1, 2, 2][self.below(10)]
            };
            let first_vehicle = self.vehicles.len();
            for v in 0..vehicles {
                self.vehicle(id, created + 1_000 * (v as i64 + 1))?;
            }
            if vehicles > 0 {
                self.with_vehicle.push(i);
            }
            let loyalty = if anchor || self.pct(25) {
                let t = created + 5_000;
                let acct = self.id(t);
                let number = format!("L-{:07}", self.loyalty.len() + 1);
                self.w
                    .put(T::LoyaltyAccounts, &[&Id(acct), &Id(id), &number, &Ts(t)])?;
                // A sign-up bonus: every account starts with a ledger row.
                let tx = self.id(t + 1);
                self.w.put(
                    T::LoyaltyTransactions,
                    &[
                        &Id(tx),
                        &Id(acct),
                        &"adjust",
                        &100_i64,
                        &None::<Id>,
                        &Ts(t + 1),
                    ],
                )?;
                self.loyalty.push(LoyaltyRec {
                    id: acct,
                    points: 100,
                });
                Some(self.loyalty.len() - 1)
            } else {
                None
            };
            let credit = if anchor || (company.is_some() && self.pct(50)) || self.pct(2) {
                let t = created + 6_000;
                let acct = self.id(t);
                let limit = 10_000 * self.between(5, 50);
                let active = anchor || self.pct(95);
                self.w.put(
                    T::CreditAccounts,
                    &[&Id(acct), &Id(id), &limit, &CURRENCY, &active, &Ts(t)],
                )?;
                let mut owed = 0;
                if anchor || self.pct(30) {
                    // A balance carried over from the paper ledger.
                    owed = 100 * self.between(10, 500);
                    let tx = self.id(t + 1);
                    self.w.put(
                        T::CreditTransactions,
                        &[
                            &Id(tx),
                            &Id(acct),
                            &"adjust",
                            &owed,
                            &None::<Id>,
                            &Some(Id(self.users[0].id)),
                            &Ts(t + 1),
                        ],
                    )?;
                }
                self.credit.push(CreditRec {
                    id: acct,
                    limit,
                    owed,
                    active,
                });
                Some(self.credit.len() - 1)
            } else {
                None
            };
            self.customers.push(CustomerRec {
                id,
                created,
                discount_ppm: level.map_or(0, |(_, ppm)| ppm),
                tax_exempt,
                first_vehicle,
                vehicles,
                loyalty,
                credit,
            });
            self.customer_created.push(created);
        }
        Ok(())
    }

    fn vehicle(&mut self, customer: Uuid, t: i64) -> Result<()> {
        let id = self.id(t);
        let (make, wmi, models) = self.pick(LEGACY.makes);
        let model = self.pick(models);
        let year = if self.pct(90) {
            self.between(1995, 2027)
        } else {
            self.between(1965, 1995)
        };
        let vin = self.pct(85).then(|| {
            // Unique by construction: a serial in base 33 after the maker's prefix; VINs
            // before 1981 were shorter.
            let mut serial = self.next_vin;
            self.next_vin += 1;
            let mut vin = String::from(wmi);
            let serial_len = if year >= 1981 { 8 } else { 6 };
            for _ in 0..serial_len {
                vin.push(char::from(VIN_CHARS[(serial % 33) as usize]));
                serial /= 33;
            }
            if year >= 1981 {
                for _ in 0..6 {
                    vin.push(char::from(VIN_CHARS[self.rng.random_range(0..33)]));
                }
            }
            vin
        });
        let plate = self.pct(80).then(|| {
            format!(
                "{}{}{}-{}",
                char::from(b'A' + self.rng.random_range(0..26u8)),
                char::from(b'A' + self.rng.random_range(0..26u8)),
                char::from(b'A' + self.rng.random_range(0..26u8)),
                self.between(100, 10_000)
            )
        });
        let engine = self.pct(60).then(|| self.pick(LEGACY.engines));
        let mileage = self.pct(70).then(|| 1_000 * self.between(0, 300));
        self.w.put(
            T::CustomerVehicles,
            &[
                &Id(id),
                &Id(customer),
                &vin,
                &plate,
                &make,
                &model,
                &year,
                &engine,
                &mileage,
                &Ts(t),
            ],
        )?;
        self.vehicles.push(VehicleRec { id, mileage });
        Ok(())
    }

    pub(super) fn promotions_and_rules(&mut self) -> Result<()> {
        let t0 = self.span.start + 4 * HOUR_MS + 58 * MINUTE_MS;
        let span = self.span.end - self.span.start;
        for i in 0..self.plan.promotions {
            let (code, name, percent, value, category, active) = match PROMOTIONS.get(i) {
                Some(p) => (
                    p.code.map(str::to_owned),
                    p.name.to_owned(),
                    p.percent,
                    p.value,
                    p.category,
                    p.active,
                ),
                None => (
                    self.pct(70).then(|| format!("FLASH{i}")),
                    format!("Flash sale {i}"),
                    true,
                    50_000,
                    None,
                    self.pct(80),
                ),
            };
            // The first two run for the whole period, so every sale has a promotion to use.
            let starts = if i < 2 {
                self.span.start
            } else {
                self.span.start + self.between(0, span)
            };
            let ends = if i < 2 || self.pct(30) {
                None
            } else {
                Some(starts + DAY_MS * self.between(7, 60))
            };
            // The clearance and the flash sales are for one product each.
            let product =
                ((i == 5 || i >= PROMOTIONS.len()) && !self.popular.is_empty()).then(|| {
                    let k = self.below(self.popular.len());
                    self.products[self.popular[k]].id
                });
            let limit = self.pct(40).then(|| 100 * self.between(1, 50));
            let id = self.id(starts.min(t0 + i as i64));
            self.w.put(
                T::Promotions,
                &[
                    &Id(id),
                    &code,
                    &name,
                    &if percent { "percent" } else { "amount" },
                    &value,
                    &oid(product),
                    &oid(category.map(|c| self.categories[c])),
                    &Ts(starts),
                    &ots(ends),
                    &limit,
                    &active,
                ],
            )?;
            self.promos.push(PromoRec {
                id,
                percent,
                value,
                starts,
                ends,
            });
        }
        for (i, rule) in COMMISSION_RULES.iter().enumerate() {
            let t = t0 + 10_000 + i as i64;
            let id = self.id(t);
            self.w.put(
                T::CommissionRules,
                &[
                    &Id(id),
                    &rule.name,
                    &oid(rule.user.map(|u| self.users[u].id)),
                    &oid(rule.category.map(|c| self.categories[c])),
                    &rule.rate_ppm,
                    &rule.active,
                    &Ts(t),
                ],
            )?;
            self.rules.push(RuleRec {
                id,
                rate_ppm: rule.rate_ppm,
            });
        }
        Ok(())
    }

    pub(super) fn gift_cards(&mut self) -> Result<()> {
        let n = self.plan.gift_cards;
        let mut issued: Vec<i64> = (0..n)
            .map(|_| {
                let d = self.rng.random_range(0..self.days);
                self.day_start(d) + self.between(9 * HOUR_MS, 18 * HOUR_MS)
            })
            .collect();
        issued.sort_unstable();
        for (i, &t) in issued.iter().enumerate() {
            let id = self.id(t);
            let code = format!("GC-{:06}-{}", i + 1, self.hex(4).to_uppercase());
            let customer = self.pct(40).then(|| {
                let k = self.below(self.customers_before(t));
                self.customers[k].id
            });
            let expires = self.pct(70).then(|| t + 730 * DAY_MS);
            let active = i == 0 || self.pct(95);
            self.w.put(
                T::GiftCards,
                &[
                    &Id(id),
                    &code,
                    &CURRENCY,
                    &oid(customer),
                    &Ts(t),
                    &ots(expires),
                    &active,
                ],
            )?;
            let amount = 2_500 * self.between(1, 9);
            // Cards sold through the old web shop were issued by nobody at the till.
            let user = (i % 10 != 3).then(|| Id(self.any_user()));
            let tx = self.id(t + 1);
            self.w.put(
                T::GiftCardTransactions,
                &[
                    &Id(tx),
                    &Id(id),
                    &"issue",
                    &amount,
                    &None::<Id>,
                    &user,
                    &Ts(t + 1),
                ],
            )?;
            self.gifts.push(GiftRec {
                id,
                issued: t,
                balance: amount,
            });
        }
        self.gift_issued = issued;
        Ok(())
    }

    pub(super) fn backup_setup(&mut self) -> Result<()> {
        let t = self.span.start + 4 * HOUR_MS + 55 * MINUTE_MS;
        let destinations = [
            ("Local disk", "local_dir", "/var/backups/pos", true),
            ("Offsite – S3", "s3", "s3://pos-backups/store-1", true),
            ("Old NAS", "sftp", "sftp://nas.local/backups/pos", false),
        ];
        for (i, (name, kind, target, active)) in destinations.into_iter().enumerate() {
            let id = self.id(t + i as i64);
            self.w.put(
                T::BackupDestinations,
                &[&Id(id), &name, &kind, &target, &active, &Ts(t + i as i64)],
            )?;
            self.destinations.push(id);
        }
        self.settings_id = self.id(t + 10);
        self.w.put(
            T::BackupSettings,
            &[
                &Id(self.settings_id),
                &"0 2 * * *",
                &30_i64,
                &true,
                &Some(Id(self.destinations[0])),
                &Ts(t + 10),
            ],
        )?;
        Ok(())
    }
}
