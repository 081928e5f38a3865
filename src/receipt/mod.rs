//! Receipts: what a till prints or sends for a sale, rendered from the stored rows alone
//! ([`crate::pos::Pos::receipt`]), and for the documents around sales ([`ReceiptOf`],
//! [`crate::pos::Pos::receipt_of`]): a layaway payment or completion, a work order's invoice, a
//! gift card's sale or balance.
//!
//! A receipt is built in two steps. [`crate::pos::Pos::receipt_document`] reads the sale, its
//! lines and payments, the cashier's display name, the terminal's name, the gift cards and
//! loyalty account it touched and, for a refund or void, the original sale's number; then
//! [`ReceiptDocument::render`] lays it out as plain text for a thermal printer (32, 42 or 48
//! columns), ESC/POS bytes, or self-contained HTML ([`ReceiptFormat`]). Nothing is written, so a
//! receipt can be printed again at any time, and the same rows always give the same bytes.
//!
//! **What a reprint uses.** The figures, texts of the lines, payments, receipt numbers and the
//! time of sale come from the sale's own rows and never change (the sale is a document: written
//! once, amended only by new rows). The brand name, receipt header and footer and locale come
//! from the copy of the settings each sale keeps ([`crate::ReceiptBrand`], the
//! `sales.receipt_brand` column, written when the sale is made and synced with it), so a
//! receipt reprinted after a rebrand, on any terminal, shows the brand it was first printed
//! with. A sale that keeps no copy (made before migration V10, adopted, or synced from a
//! terminal that does not write one) is printed with the settings of the day, and the receipt
//! says so in a line of its own ([`BrandSource::Settings`]). A refund or void is a sale of its
//! own, made under the brand of its day. A layaway's payments and completion, a work order's
//! invoice and a gift card's sale print under the copy of the sale they belong to (the
//! layaway's, the one the work order completed into, the one that sold the card); a gift
//! card's balance slip belongs to no sale and always shows today's settings, saying so. The amount's currency is always the sale's own
//! (`sales.currency`), only its symbol and separators follow the locale. A cashier's or
//! terminal's name is read from their row as it is now: people and tills are renamed rarely,
//! and copying them onto every sale would not be worth its bytes.
//!
//! **Figures.** Lines show their amount before tax (quantity × unit price), and a discount under
//! the line when it has one, so the lines add up to the subtotal. Tax is one line per rate the
//! sale's copy names (`VAT 8%`): a checkout charges the sum of the tenant's rates on each taxed
//! line, rounded once per line, and the rows keep that one figure per line, so each rate's line
//! is the sale's tax split in proportion to the rates, by largest remainder, and the rate lines
//! add up to the stored tax to the minor unit. A sale whose copy names no rates (or that kept
//! no copy) shows one `Tax` line. Gift card and loyalty balances are the balance just after
//! the sale: the sum of the ledger rows written at or before the sale's time (a row another
//! terminal wrote earlier offline and synced later counts too).
//!
//! **Times** are given in the store's time zone as the sale's copy names it
//! ([`crate::TenantSettings::time_zone`]), with its abbreviation (`2026-03-14 10:26 CET`),
//! converted by the tz database bundled with the crate (jiff); in UTC, saying so, when none is
//! set. Dates are written year-month-day in every locale.
//!
//! Only with the `receipts` feature (on by default): ICU4X's CLDR data is most of its compile
//! time, and a terminal that prints no receipts leaves it out.
//!
//! **Texts typed by the tenant or staff** (brand, header, footer, descriptions, names) are
//! written with their control characters replaced by `?` in text and ESC/POS (so no text can
//! send a printer command), and HTML-escaped in HTML.
//!
//! **Labels** ("Subtotal", "Change", "Brand as of printing") come from one table in English,
//! German and Japanese, chosen by the language of the receipt's locale, English for any other
//! language.

mod labels;
mod money;
mod render;

pub use money::MoneyFormat;

use crate::catalog::{
    CustomerVehicle, Device, GiftCard, Layaway, LayawayPayment, LoyaltyAccount, PaymentMethod,
    Record, Sale, SaleLine, SalePayment, User, WorkOrder,
};
use crate::ids::{RowId, Timestamp};
use crate::pos::FlowError;
use crate::tenant::settings::{ReceiptBrand, TaxRate, TenantSettings};
use crate::tenant::Scope;
use crate::Result;

/// Why a receipt could not be rendered. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// The tenant's locale is not a BCP 47 language tag ICU4X accepts.
    #[error("locale {0:?} cannot format a receipt: not a BCP 47 language tag")]
    Locale(String),
    /// The currency is not a three-letter code.
    #[error("currency {0:?} cannot format a receipt: not an ISO 4217 code")]
    Currency(String),
    /// The locale data could not be loaded.
    #[error("no number or currency data for locale {locale:?}: {reason}")]
    LocaleData {
        /// The locale.
        locale: String,
        /// What ICU4X said.
        reason: String,
    },
    /// A width that is not one of the paper widths ([`PaperWidth`]).
    #[error("paper width {0} is not one of 32, 42 or 48 columns")]
    Width(u16),
    /// A format name that is not `text`, `escpos` or `html`.
    #[error("receipt format {0:?} is not one of text, escpos or html")]
    Format(String),
}

/// Columns of a thermal printer's line (with its standard font A).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PaperWidth {
    /// 58 mm paper: 32 columns.
    Cols32,
    /// 80 mm paper on many printers: 42 columns.
    Cols42,
    /// 80 mm paper: 48 columns.
    Cols48,
}

impl PaperWidth {
    /// Every width, narrowest first.
    pub const ALL: &'static [PaperWidth] =
        &[PaperWidth::Cols32, PaperWidth::Cols42, PaperWidth::Cols48];

    /// The number of columns.
    pub fn columns(self) -> usize {
        match self {
            PaperWidth::Cols32 => 32,
            PaperWidth::Cols42 => 42,
            PaperWidth::Cols48 => 48,
        }
    }
}

impl TryFrom<u16> for PaperWidth {
    type Error = ReceiptError;
    fn try_from(columns: u16) -> std::result::Result<Self, ReceiptError> {
        match columns {
            32 => Ok(PaperWidth::Cols32),
            42 => Ok(PaperWidth::Cols42),
            48 => Ok(PaperWidth::Cols48),
            other => Err(ReceiptError::Width(other)),
        }
    }
}

/// How a receipt is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReceiptFormat {
    /// UTF-8 text, every line at most the paper's width (in terminal columns: a CJK character
    /// takes two), amounts right-aligned, each line ended by `\n`. CLDR's full-width yen sign
    /// (`￥`, ja-JP) is written half-width (`¥`): one column, as every other currency symbol.
    Text(PaperWidth),
    /// Bytes for an ESC/POS printer: `ESC @` (initialise), the brand centred in bold and double
    /// size, the text layout of [`ReceiptFormat::Text`] (the total in bold), a QR code of the
    /// receipt number (`GS ( k`), and a feed and partial cut (`GS V`). Texts are sent in a code
    /// page the printer is told to use right after `ESC @`: CP858 (`ESC t 19`: Western
    /// European letters and `€`), or for a Japanese locale Shift_JIS in Kanji mode (`ESC R 8`,
    /// `ESC t 1`, `FS C 1`, `FS &`), which needs a printer with Japanese fonts. A character the
    /// page cannot print is sent as `?` (`??` for a full-width one, so lines keep their width).
    /// The yen sign is the half-width `¥`, as in [`ReceiptFormat::Text`].
    EscPos(PaperWidth),
    /// A self-contained HTML document for email or printing: inline styles, no scripts, no
    /// external resources, every text from the tenant or the staff HTML-escaped.
    Html,
}

impl ReceiptFormat {
    /// The format named `text`, `escpos` or `html`, at `width` columns for text and ESC/POS.
    pub fn parse(name: &str, width: PaperWidth) -> std::result::Result<Self, ReceiptError> {
        match name {
            "text" => Ok(ReceiptFormat::Text(width)),
            "escpos" => Ok(ReceiptFormat::EscPos(width)),
            "html" => Ok(ReceiptFormat::Html),
            other => Err(ReceiptError::Format(other.to_owned())),
        }
    }
}

/// A line of the receipt.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReceiptLine {
    /// The text on the receipt.
    pub description: String,
    /// Quantity in thousandths (negative on a refund).
    pub quantity_milli: i64,
    /// Unit price.
    pub unit_price_minor: i64,
    /// Quantity × unit price, before discount and tax.
    pub amount_minor: i64,
    /// Discount on the line.
    pub discount_minor: i64,
}

/// A payment of the receipt.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReceiptPayment {
    /// The method.
    pub method: PaymentMethod,
    /// Amount applied to the sale (negative when given back).
    pub amount_minor: i64,
    /// Cash handed over.
    pub tendered_minor: Option<i64>,
    /// Change given.
    pub change_minor: i64,
    /// Card authorisation reference.
    pub reference: Option<String>,
    /// The gift card's code and its balance just after the sale.
    pub gift_card: Option<(String, i64)>,
    /// Points redeemed by this payment (loyalty; negative when a refund gives them back).
    pub points: Option<i64>,
}

/// Loyalty on the receipt.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReceiptLoyalty {
    /// The card number.
    pub number: String,
    /// Points earned by the sale (negative when a refund takes back what its sale earned).
    pub earned: i64,
    /// Points redeemed by the sale (negative when a refund gives points back).
    pub redeemed: i64,
    /// The balance just after the sale.
    pub balance: i64,
}

/// What to print ([`crate::pos::Pos::receipt_of`]): the receipt of a sale or of one of the
/// documents a till prints for besides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReceiptOf {
    /// A sale, a refund or a void, by the sale's id.
    Sale(RowId),
    /// One payment into a layaway (its deposit or a later one): the goods held, the payment,
    /// what is paid with it and what is still due. Under the brand the layaway's sale keeps.
    LayawayPayment {
        /// The layaway.
        layaway: RowId,
        /// The payment (a row of `layaway_payments` of that layaway).
        payment: RowId,
    },
    /// A completed layaway: the goods, every payment, points earned. Refused with
    /// [`crate::pos::FlowError::State`] unless it is completed.
    LayawayCompletion(RowId),
    /// A completed work order's invoice: the sale it completed into, with the job, vehicle,
    /// odometer and technician. Refused with [`crate::pos::FlowError::State`] unless it is
    /// completed.
    WorkOrder(RowId),
    /// The sale of a gift card ([`crate::pos::Pos::sell_gift_card`]), with the card's code,
    /// its balance after the sale and its expiry. Refused with
    /// [`crate::pos::FlowError::State`] for a card issued without a sale.
    GiftCardSale(RowId),
    /// A gift card's balance as of `at` (the sum of its ledger rows written at or before it):
    /// a slip of no sale, so under the tenant's settings as they are when it is printed, which
    /// it says. Pass the time of printing; the same `at` gives the same slip.
    GiftCardBalance {
        /// The card.
        card: RowId,
        /// The time the balance is read at and the slip is dated.
        at: Timestamp,
    },
}

/// What a [`ReceiptDocument`] is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReceiptKind {
    /// A sale, a refund or a void ([`ReceiptDocument::reverses`] tells which).
    Sale,
    /// A payment into a layaway.
    LayawayPayment,
    /// A completed layaway.
    LayawayCompletion,
    /// A work order's invoice.
    WorkOrderInvoice,
    /// A gift card's sale.
    GiftCardSale,
    /// A gift card's balance slip.
    GiftCardBalance,
}

/// A layaway on its payment or completion receipt.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReceiptLayaway {
    /// The layaway's number.
    pub number: String,
    /// What the goods cost in all.
    pub total_minor: i64,
    /// Paid so far: with a payment's receipt, every payment up to and including it.
    pub paid_minor: i64,
    /// Still to pay.
    pub due_minor: i64,
}

/// A work order on its invoice.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReceiptWorkOrder {
    /// The work order's number.
    pub number: String,
    /// What was done.
    pub description: String,
    /// The vehicle: year, make and model.
    pub vehicle: Option<String>,
    /// The vehicle's licence plate.
    pub plate: Option<String>,
    /// Odometer at check-in.
    pub odometer: Option<i64>,
    /// The technician's display name.
    pub technician: Option<String>,
}

/// A gift card on its sale's receipt or balance slip.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReceiptGiftCard {
    /// The card's code.
    pub code: String,
    /// Its balance just after the sale, or at the slip's time.
    pub balance_minor: i64,
    /// When it expires.
    pub expires_at: Option<Timestamp>,
    /// False for a blocked card.
    pub active: bool,
}

/// Where a receipt's brand, header, footer and locale come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BrandSource {
    /// The copy the sale keeps of the settings in force when it was made
    /// ([`crate::ReceiptBrand`]): a reprint shows what the first print showed.
    Sale,
    /// The tenant's settings as they are when the receipt is printed: the sale keeps no copy
    /// (made before migration V10, adopted from a legacy store, or synced from a terminal that
    /// does not write one, or its copy could not be read). The receipt says so.
    Settings,
}

/// Everything a receipt shows, read from the stored rows
/// ([`crate::pos::Pos::receipt_document`]) and the tenant's settings. Public so an application
/// can lay out its own receipt, and so tests can fix the time of sale.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReceiptDocument {
    /// The brand name (see [`ReceiptDocument::brand_source`]).
    pub brand_name: String,
    /// The receipt header.
    pub header: String,
    /// The receipt footer.
    pub footer: String,
    /// The locale money and quantities are written in.
    pub locale: String,
    /// Whether brand, header, footer and locale are the sale's own copy or today's settings.
    pub brand_source: BrandSource,
    /// The tax rates the sale's taxed lines were charged at (its copy's); empty when it kept
    /// none, and then the receipt shows one line of tax.
    pub tax_rates: Vec<TaxRate>,
    /// The IANA time zone the time of sale is given in; UTC when `None` or unknown.
    pub time_zone: Option<String>,
    /// The sale's currency.
    pub currency: String,
    /// The receipt number.
    pub number: String,
    /// The sale's status (`completed`, `voided`, `layaway`, `open`).
    pub status: String,
    /// When the sale was made.
    pub sold_at: Timestamp,
    /// The cashier's display name.
    pub cashier: String,
    /// The terminal's name, when the sale names one.
    pub terminal: Option<String>,
    /// For a refund or void: `refund` or `void`, and the original sale's receipt number.
    pub reverses: Option<(String, String)>,
    /// The sale's note (a refund's reason).
    pub note: Option<String>,
    /// The lines, in order.
    pub lines: Vec<ReceiptLine>,
    /// Sum of the lines before discounts.
    pub subtotal_minor: i64,
    /// Discounts.
    pub discount_minor: i64,
    /// Tax.
    pub tax_minor: i64,
    /// Total.
    pub total_minor: i64,
    /// The payments, in the order they were taken.
    pub payments: Vec<ReceiptPayment>,
    /// Loyalty, when the sale earned or redeemed points.
    pub loyalty: Option<ReceiptLoyalty>,
    /// What the receipt is for.
    pub kind: ReceiptKind,
    /// For a layaway's payment or completion: the layaway's number and what is paid and due.
    pub layaway: Option<ReceiptLayaway>,
    /// For a work order's invoice: the job, the vehicle and the technician.
    pub work_order: Option<ReceiptWorkOrder>,
    /// For a gift card's sale or balance slip: the card and its balance.
    pub gift_card: Option<ReceiptGiftCard>,
}

impl ReceiptDocument {
    /// Reads what the receipt of `what` shows, with `settings` (today's) for a sale that kept
    /// no brand and for a gift card's balance slip. Fails with [`crate::Error::NotFound`] for a
    /// row this tenant does not have.
    pub(crate) fn load(s: &Scope<'_>, settings: &TenantSettings, what: &ReceiptOf) -> Result<Self> {
        match *what {
            ReceiptOf::Sale(id) => {
                let sale: Sale = s.row(id)?;
                let at = sale.sold_at;
                Self::load_sale(s, settings, sale, at)
            }
            ReceiptOf::LayawayPayment { layaway, payment } => {
                Self::load_layaway_payment(s, settings, layaway, payment)
            }
            ReceiptOf::LayawayCompletion(layaway) => {
                Self::load_layaway_completion(s, settings, layaway)
            }
            ReceiptOf::WorkOrder(id) => Self::load_work_order(s, settings, id),
            ReceiptOf::GiftCardSale(card) => Self::load_gift_card_sale(s, settings, card),
            ReceiptOf::GiftCardBalance { card, at } => {
                Self::load_gift_card_balance(s, settings, card, at)
            }
        }
    }

    /// The sale's receipt, balances of the gift cards and loyalty account it touched as they
    /// were at `at` (its time of sale, or when its layaway was completed).
    fn load_sale(
        s: &Scope<'_>,
        settings: &TenantSettings,
        sale: Sale,
        at: Timestamp,
    ) -> Result<Self> {
        let lines: Vec<SaleLine> = s.rows_where("sale_id = ?2", "ORDER BY line_no", &[&sale.id])?;
        let payments: Vec<SalePayment> =
            s.rows_where("sale_id = ?2", "ORDER BY paid_at, id", &[&sale.id])?;
        let cashier: User = s.row(sale.user_id)?;
        let terminal = match sale.device_id {
            Some(d) => Some(s.row::<Device>(d)?.name),
            None => None,
        };
        let reverses = s.query_optional(
            "SELECT r.kind, o.number FROM sale_reversals r JOIN sales o \
             ON o.tenant_id = r.tenant_id AND o.id = r.sale_id \
             WHERE r.tenant_id = ?1 AND r.reversal_sale_id = ?2 ORDER BY r.id LIMIT 1",
            &[&sale.id],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
        )?;
        // Points the sale's loyalty payment redeemed: its redeem rows, or on a refund the points
        // it gave back (positive reverse rows, shown negative).
        let redeemed: i64 = s.query_row(
            "SELECT coalesce(-sum(points), 0) FROM loyalty_transactions \
             WHERE tenant_id = ?1 AND sale_id = ?2 \
             AND (kind = 'redeem' OR (kind = 'reverse' AND points > 0))",
            &[&sale.id],
            |r| r.get(0),
        )?;
        let mut out_payments = Vec::with_capacity(payments.len());
        for p in payments {
            let method = method_of(&p.method, "sale_payments")?;
            let gift_card = match p.gift_card_id {
                Some(card) => {
                    let code = s.row::<GiftCard>(card)?.code;
                    Some((code, card_balance(s, card, at)?))
                }
                None => None,
            };
            let points = (method == PaymentMethod::Loyalty && redeemed != 0).then_some(redeemed);
            out_payments.push(ReceiptPayment {
                method,
                amount_minor: p.amount_minor,
                tendered_minor: p.tendered_minor,
                change_minor: p.change_minor,
                reference: p.reference,
                gift_card,
                points,
            });
        }
        let loyalty = s.query_optional(
            "SELECT account_id, \
                    coalesce(sum(CASE WHEN kind = 'accrue' OR (kind = 'reverse' AND points < 0) \
                        THEN points END), 0), \
                    coalesce(-sum(CASE WHEN kind = 'redeem' OR (kind = 'reverse' AND points > 0) \
                        THEN points END), 0) \
             FROM loyalty_transactions WHERE tenant_id = ?1 AND sale_id = ?2 \
             GROUP BY account_id ORDER BY account_id LIMIT 1",
            &[&sale.id],
            |r| {
                Ok((
                    r.get::<_, RowId>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            },
        )?;
        let loyalty = match loyalty {
            Some((account, earned, redeemed)) => {
                let number = s.row::<LoyaltyAccount>(account)?.number;
                let balance = s.query_row(
                    "SELECT coalesce(sum(points), 0) FROM loyalty_transactions \
                     WHERE tenant_id = ?1 AND account_id = ?2 AND created_at <= ?3",
                    &[&account, &at],
                    |r| r.get(0),
                )?;
                Some(ReceiptLoyalty {
                    number,
                    earned,
                    redeemed,
                    balance,
                })
            }
            None => None,
        };
        let (brand, brand_source) = match sale
            .receipt_brand
            .as_ref()
            .and_then(ReceiptBrand::from_json)
        {
            Some(kept) => (kept, BrandSource::Sale),
            // Which rates the sale was taxed at is not known: today's could differ.
            None => (
                ReceiptBrand {
                    tax_rates: Vec::new(),
                    ..settings.receipt_brand()
                },
                BrandSource::Settings,
            ),
        };
        Ok(Self {
            brand_name: brand.brand_name,
            header: brand.receipt_header,
            footer: brand.receipt_footer,
            locale: brand.locale,
            brand_source,
            tax_rates: brand.tax_rates,
            time_zone: brand.time_zone,
            currency: sale.currency,
            number: sale.number,
            status: sale.status,
            sold_at: sale.sold_at,
            cashier: cashier.display_name,
            terminal,
            reverses,
            note: sale.note,
            lines: lines
                .into_iter()
                .map(|l| ReceiptLine {
                    description: l.description,
                    quantity_milli: l.quantity_milli,
                    unit_price_minor: l.unit_price_minor,
                    amount_minor: l.total_minor - l.tax_minor + l.discount_minor,
                    discount_minor: l.discount_minor,
                })
                .collect(),
            subtotal_minor: sale.subtotal_minor,
            discount_minor: sale.discount_minor,
            tax_minor: sale.tax_minor,
            total_minor: sale.total_minor,
            payments: out_payments,
            loyalty,
            kind: ReceiptKind::Sale,
            layaway: None,
            work_order: None,
            gift_card: None,
        })
    }

    /// A layaway payment's receipt: its sale's goods and brand, this one payment, and what is
    /// paid through it (payments at or before it, in the order they were taken).
    fn load_layaway_payment(
        s: &Scope<'_>,
        settings: &TenantSettings,
        layaway: RowId,
        payment: RowId,
    ) -> Result<Self> {
        let l: Layaway = s.row(layaway)?;
        let p: LayawayPayment = s.row(payment)?;
        if p.layaway_id != l.id {
            // A payment of another layaway is no payment of this one.
            return Err(crate::Error::NotFound {
                table: LayawayPayment::TABLE.name,
                id: payment,
            });
        }
        let sale: Sale = s.row(l.sale_id)?;
        let mut doc = Self::load_sale(s, settings, sale, p.paid_at)?;
        let paid_minor: i64 = s.query_row(
            "SELECT coalesce(sum(amount_minor), 0) FROM layaway_payments \
             WHERE tenant_id = ?1 AND layaway_id = ?2 AND (paid_at < ?3 OR (paid_at = ?3 AND id <= ?4))",
            &[&l.id, &p.paid_at, &p.id],
            |r| r.get(0),
        )?;
        if let Some(user) = p.user_id {
            doc.cashier = s.row::<User>(user)?.display_name;
        }
        doc.sold_at = p.paid_at;
        doc.payments = vec![layaway_payment(&p)?];
        // Points are earned on completion; a payment's reprint never shows them.
        doc.loyalty = None;
        doc.kind = ReceiptKind::LayawayPayment;
        doc.layaway = Some(ReceiptLayaway {
            number: l.number,
            total_minor: l.total_minor,
            paid_minor,
            due_minor: l.total_minor - paid_minor,
        });
        Ok(doc)
    }

    /// A completed layaway's receipt: its sale with every payment, dated at its completion.
    fn load_layaway_completion(
        s: &Scope<'_>,
        settings: &TenantSettings,
        layaway: RowId,
    ) -> Result<Self> {
        let l: Layaway = s.row(layaway)?;
        let closed_at = match (l.status.as_str(), l.closed_at) {
            ("completed", Some(at)) => at,
            _ => {
                return Err(FlowError::State {
                    what: "layaway",
                    id: l.id,
                    status: l.status,
                    action: "print a completion receipt: only a completed layaway has one",
                }
                .into())
            }
        };
        let sale: Sale = s.row(l.sale_id)?;
        let mut doc = Self::load_sale(s, settings, sale, closed_at)?;
        let payments: Vec<LayawayPayment> =
            s.rows_where("layaway_id = ?2", "ORDER BY paid_at, id", &[&l.id])?;
        doc.payments = payments
            .iter()
            .map(layaway_payment)
            .collect::<Result<_>>()?;
        let paid_minor = payments.iter().map(|p| p.amount_minor).sum::<i64>();
        doc.sold_at = closed_at;
        doc.kind = ReceiptKind::LayawayCompletion;
        doc.layaway = Some(ReceiptLayaway {
            number: l.number,
            total_minor: l.total_minor,
            paid_minor,
            due_minor: l.total_minor - paid_minor,
        });
        Ok(doc)
    }

    /// A completed work order's invoice: its sale, with the job, vehicle and technician.
    fn load_work_order(s: &Scope<'_>, settings: &TenantSettings, id: RowId) -> Result<Self> {
        let wo: WorkOrder = s.row(id)?;
        let Some(sale_id) = wo.sale_id.filter(|_| wo.status == "completed") else {
            return Err(FlowError::State {
                what: "work order",
                id: wo.id,
                status: wo.status,
                action: "print an invoice: only a completed work order has one",
            }
            .into());
        };
        let sale: Sale = s.row(sale_id)?;
        let at = sale.sold_at;
        let mut doc = Self::load_sale(s, settings, sale, at)?;
        let (vehicle, plate) = match wo.vehicle_id {
            Some(v) => {
                let v: CustomerVehicle = s.row(v)?;
                (Some(format!("{} {} {}", v.year, v.make, v.model)), v.plate)
            }
            None => (None, None),
        };
        let technician = match wo.technician_user_id {
            Some(u) => Some(s.row::<User>(u)?.display_name),
            None => None,
        };
        doc.kind = ReceiptKind::WorkOrderInvoice;
        doc.work_order = Some(ReceiptWorkOrder {
            number: wo.number,
            description: wo.description,
            vehicle,
            plate,
            odometer: wo.odometer,
            technician,
        });
        Ok(doc)
    }

    /// The receipt of the sale that sold a gift card, with the card.
    fn load_gift_card_sale(s: &Scope<'_>, settings: &TenantSettings, card: RowId) -> Result<Self> {
        let c: GiftCard = s.row(card)?;
        let sold_by: Option<RowId> = s.query_optional(
            "SELECT sale_id FROM gift_card_transactions \
             WHERE tenant_id = ?1 AND gift_card_id = ?2 AND kind = 'issue' AND sale_id IS NOT NULL \
             ORDER BY id LIMIT 1",
            &[&c.id],
            |r| r.get(0),
        )?;
        let Some(sale_id) = sold_by else {
            return Err(FlowError::State {
                what: "gift card",
                id: c.id,
                status: "issued without a sale".to_owned(),
                action: "print its sale's receipt (print its balance instead)",
            }
            .into());
        };
        let sale: Sale = s.row(sale_id)?;
        let at = sale.sold_at;
        let mut doc = Self::load_sale(s, settings, sale, at)?;
        doc.kind = ReceiptKind::GiftCardSale;
        doc.gift_card = Some(ReceiptGiftCard {
            balance_minor: card_balance(s, c.id, at)?,
            code: c.code,
            expires_at: c.expires_at,
            active: c.active,
        });
        Ok(doc)
    }

    /// A gift card's balance slip at `at`, under today's settings.
    fn load_gift_card_balance(
        s: &Scope<'_>,
        settings: &TenantSettings,
        card: RowId,
        at: Timestamp,
    ) -> Result<Self> {
        let c: GiftCard = s.row(card)?;
        let brand = settings.receipt_brand();
        Ok(Self {
            brand_name: brand.brand_name,
            header: brand.receipt_header,
            footer: brand.receipt_footer,
            locale: brand.locale,
            brand_source: BrandSource::Settings,
            tax_rates: Vec::new(),
            time_zone: brand.time_zone,
            currency: c.currency,
            number: String::new(),
            status: if c.active { "active" } else { "blocked" }.to_owned(),
            sold_at: at,
            cashier: String::new(),
            terminal: None,
            reverses: None,
            note: None,
            lines: Vec::new(),
            subtotal_minor: 0,
            discount_minor: 0,
            tax_minor: 0,
            total_minor: 0,
            payments: Vec::new(),
            loyalty: None,
            kind: ReceiptKind::GiftCardBalance,
            layaway: None,
            work_order: None,
            gift_card: Some(ReceiptGiftCard {
                balance_minor: card_balance(s, c.id, at)?,
                code: c.code,
                expires_at: c.expires_at,
                active: c.active,
            }),
        })
    }

    /// The receipt in `format`. Text and HTML are UTF-8.
    pub fn render(&self, format: &ReceiptFormat) -> std::result::Result<Vec<u8>, ReceiptError> {
        let money = MoneyFormat::new(&self.locale, &self.currency)?;
        Ok(match format {
            ReceiptFormat::Text(width) => render::text(self, &money, width.columns()).into_bytes(),
            ReceiptFormat::EscPos(width) => render::escpos(self, &money, width.columns()),
            ReceiptFormat::Html => render::html(self, &money).into_bytes(),
        })
    }
}

/// A stored payment method word, refused as bad data when it is not one.
fn method_of(word: &str, table: &'static str) -> Result<PaymentMethod> {
    word.parse()
        .map_err(|e: crate::UnknownWord| crate::Error::InvalidPayload {
            table,
            reason: e.to_string(),
        })
}

/// A layaway payment as a receipt's payment (cash and card only: no change, no card balance).
fn layaway_payment(p: &LayawayPayment) -> Result<ReceiptPayment> {
    Ok(ReceiptPayment {
        method: method_of(&p.method, "layaway_payments")?,
        amount_minor: p.amount_minor,
        tendered_minor: None,
        change_minor: 0,
        reference: p.reference.clone(),
        gift_card: None,
        points: None,
    })
}

/// A gift card's balance just after `at`: its ledger rows written at or before it (a row
/// another terminal wrote earlier offline and synced later counts too).
fn card_balance(s: &Scope<'_>, card: RowId, at: Timestamp) -> Result<i64> {
    s.query_row(
        "SELECT coalesce(sum(amount_minor), 0) FROM gift_card_transactions \
         WHERE tenant_id = ?1 AND gift_card_id = ?2 AND created_at <= ?3",
        &[&card, &at],
        |r| r.get(0),
    )
}
