//! The three renderings of a [`ReceiptDocument`]. One layout (a list of [`Row`]s) is laid out as
//! text, sent as ESC/POS around that text, or written as an HTML table, so the three always
//! show the same things in the same order.

use unicode_width::UnicodeWidthChar;

use super::labels::{Label, Lang};
use super::{BrandSource, MoneyFormat, ReceiptDocument, ReceiptKind};
use crate::catalog::PaymentMethod;
use crate::ids::Timestamp;

/// Money, quantities and rates as the layout writes them: the locale's (CLDR's), except that
/// on paper (text and ESC/POS) the full-width yen sign `￥` CLDR gives ja-JP is written as the
/// half-width `¥`: one column like every other currency symbol, so amounts line up with
/// their digits, and a sign every printer with a yen sign has (CP858 0xBE, JIS X 0201 0x5C).
/// HTML keeps ICU's output.
struct Fmt<'a> {
    cldr: &'a MoneyFormat,
    paper: bool,
}

impl Fmt<'_> {
    fn money(&self, minor: i64) -> String {
        let text = self.cldr.money(minor);
        if self.paper {
            text.replace('\u{ffe5}', "\u{a5}")
        } else {
            text
        }
    }

    fn quantity(&self, milli: i64) -> String {
        self.cldr.quantity(milli)
    }

    fn percent(&self, ppm: u32) -> String {
        self.cldr.percent(ppm)
    }
}

/// A row of the layout.
enum Row {
    /// Centred text (wrapped); `true` in bold.
    Center(String, bool),
    /// Left-aligned text (wrapped).
    Left(String),
    /// A label and an amount at the right margin; `true` in bold.
    Pair(String, String, bool),
    /// A dashed rule across the paper.
    Rule,
    /// An empty line.
    Blank,
}

/// A text typed by the tenant or staff, safe to print: a tab becomes a space and any other
/// control character `?`, so no text can send a printer command (ESC, GS) or break a line.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' => ' ',
            c if c.is_control() => '?',
            c => c,
        })
        .collect()
}

/// The lines of a multi-line text (header, footer), each cleaned; none for an empty text.
fn text_lines(text: &str) -> Vec<String> {
    if text.trim().is_empty() {
        return Vec::new();
    }
    text.lines().map(clean).collect()
}

fn method_label(method: PaymentMethod) -> Label {
    match method {
        PaymentMethod::Cash => Label::Cash,
        PaymentMethod::Card => Label::Card,
        PaymentMethod::GiftCard => Label::GiftCard,
        PaymentMethod::StoreCredit => Label::StoreCredit,
        PaymentMethod::Loyalty => Label::Points,
    }
}

/// The time of sale in the store's time zone with its abbreviation, or in UTC saying so when
/// the sale names no zone (or one the bundled tz database does not know).
fn sold_at(doc: &ReceiptDocument) -> String {
    local(doc, doc.sold_at, "%Y-%m-%d %H:%M %Z", "%Y-%m-%d %H:%M UTC")
}

/// `at` in the receipt's time zone by `zoned` (jiff's strftime), or in UTC by `utc` (chrono's).
fn local(doc: &ReceiptDocument, at: Timestamp, zoned: &str, utc: &str) -> String {
    if let Some(zone) = &doc.time_zone {
        if let (Ok(tz), Ok(ts)) = (
            jiff::tz::TimeZone::get(zone),
            jiff::Timestamp::from_millisecond(at.as_millis()),
        ) {
            return ts.to_zoned_datetime(tz).strftime(zoned).to_string();
        }
    }
    at.as_datetime().format(utc).to_string()
}

/// The tax lines: one per rate the sale's copy names, each its share of the sale's tax in
/// proportion to the rates (largest remainder, earlier rate first on a tie), so they add up
/// to the stored tax exactly; or one `Tax` line when no rate is named or there is no tax.
fn tax_lines(doc: &ReceiptDocument, money: &Fmt<'_>, lang: Lang) -> Vec<(String, i64)> {
    let total_ppm: u128 = doc.tax_rates.iter().map(|r| u128::from(r.rate_ppm)).sum();
    if total_ppm == 0 || doc.tax_minor == 0 {
        return vec![(Label::Tax.text(lang).to_owned(), doc.tax_minor)];
    }
    let tax = u128::from(doc.tax_minor.unsigned_abs());
    let mut shares: Vec<(u128, u128)> = doc
        .tax_rates
        .iter()
        .map(|r| {
            let exact = tax * u128::from(r.rate_ppm);
            (exact / total_ppm, exact % total_ppm)
        })
        .collect();
    let mut left = tax - shares.iter().map(|(q, _)| q).sum::<u128>();
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&a, &b| shares[b].1.cmp(&shares[a].1).then(a.cmp(&b)));
    for i in order {
        if left == 0 {
            break;
        }
        shares[i].0 += 1;
        left -= 1;
    }
    let sign = doc.tax_minor.signum();
    doc.tax_rates
        .iter()
        .zip(shares)
        .map(|(r, (share, _))| {
            // A share never exceeds the tax, which is an i64.
            let amount = i64::try_from(share).unwrap_or(i64::MAX) * sign;
            (
                format!("{} {}", clean(&r.name), money.percent(r.rate_ppm)),
                amount,
            )
        })
        .collect()
}

/// Everything below the brand, in order.
fn layout(doc: &ReceiptDocument, money: &Fmt<'_>) -> Vec<Row> {
    let lang = Lang::of(&doc.locale);
    let mut rows = Vec::new();
    for line in text_lines(&doc.header) {
        rows.push(Row::Center(line, false));
    }
    rows.push(Row::Blank);
    let is_void = matches!(&doc.reverses, Some((kind, _)) if kind == "void");
    let banner = match doc.kind {
        ReceiptKind::LayawayPayment if doc.payments.iter().any(|p| p.amount_minor < 0) => {
            Some(Label::LayawayRefundBanner)
        }
        ReceiptKind::LayawayPayment => Some(Label::LayawayPaymentBanner),
        ReceiptKind::LayawayCompletion => Some(Label::LayawayCompletedBanner),
        ReceiptKind::WorkOrderInvoice => Some(Label::InvoiceBanner),
        ReceiptKind::GiftCardBalance => Some(Label::GiftCardBalanceBanner),
        _ if is_void => Some(Label::VoidBanner),
        _ if doc.reverses.is_some() => Some(Label::RefundBanner),
        _ => None,
    };
    if let Some(banner) = banner {
        rows.push(Row::Center(banner.text(lang).to_owned(), true));
    }
    let field = |label: Label, value: &str| Row::Left(format!("{}: {value}", label.text(lang)));
    if !doc.number.is_empty() {
        rows.push(field(Label::Receipt, &clean(&doc.number)));
    }
    if let Some((_, original)) = &doc.reverses {
        let what = if is_void {
            Label::VoidOf
        } else {
            Label::RefundOf
        };
        rows.push(field(what, &clean(original)));
    }
    if let Some(l) = &doc.layaway {
        rows.push(field(Label::Layaway, &clean(&l.number)));
    }
    if let Some(w) = &doc.work_order {
        rows.push(field(Label::WorkOrder, &clean(&w.number)));
    }
    rows.push(field(Label::Date, &sold_at(doc)));
    if !doc.cashier.is_empty() {
        rows.push(field(Label::Cashier, &clean(&doc.cashier)));
    }
    if let Some(t) = &doc.terminal {
        rows.push(field(Label::Terminal, &clean(t)));
    }
    if doc.brand_source == BrandSource::Settings {
        // A slip of no sale always shows today's brand; a sale that kept none says why.
        let note = if doc.kind == ReceiptKind::GiftCardBalance {
            Label::BrandAsOfPrinting
        } else {
            Label::SaleKeptNone
        };
        rows.push(Row::Left(note.text(lang).to_owned()));
    }
    if doc.reverses.is_some() {
        if let Some(note) = &doc.note {
            rows.push(field(Label::Reason, &clean(note)));
        }
    }
    if let Some(w) = &doc.work_order {
        if let Some(v) = &w.vehicle {
            rows.push(field(Label::Vehicle, &clean(v)));
        }
        if let Some(p) = &w.plate {
            rows.push(field(Label::Plate, &clean(p)));
        }
        if let Some(o) = w.odometer {
            rows.push(field(
                Label::Odometer,
                &money.quantity(o.saturating_mul(1000)),
            ));
        }
        if let Some(t) = &w.technician {
            rows.push(field(Label::Technician, &clean(t)));
        }
        rows.push(field(Label::Job, &clean(&w.description)));
    }
    rows.push(Row::Rule);
    if doc.kind != ReceiptKind::GiftCardBalance {
        sale_rows(doc, money, lang, &mut rows);
    }
    if let Some(l) = &doc.layaway {
        rows.push(Row::Pair(
            Label::Paid.text(lang).to_owned(),
            money.money(l.paid_minor),
            false,
        ));
        rows.push(Row::Pair(
            Label::Due.text(lang).to_owned(),
            money.money(l.due_minor),
            true,
        ));
    }
    if let Some(g) = &doc.gift_card {
        if doc.kind != ReceiptKind::GiftCardBalance {
            rows.push(Row::Rule);
        }
        rows.push(field(Label::GiftCard, &clean(&g.code)));
        rows.push(Row::Pair(
            Label::Balance.text(lang).to_owned(),
            money.money(g.balance_minor),
            true,
        ));
        if let Some(e) = g.expires_at {
            rows.push(field(
                Label::Expires,
                &local(doc, e, "%Y-%m-%d", "%Y-%m-%d"),
            ));
        }
        if !g.active {
            rows.push(Row::Left(Label::Blocked.text(lang).to_owned()));
        }
    }
    if let Some(l) = &doc.loyalty {
        rows.push(Row::Rule);
        rows.push(field(Label::LoyaltyCard, &clean(&l.number)));
        let points = |label: Label, n: i64| {
            Row::Pair(
                label.text(lang).to_owned(),
                money.quantity(n.saturating_mul(1000)),
                false,
            )
        };
        if l.earned != 0 {
            rows.push(points(Label::PointsEarned, l.earned));
        }
        if l.redeemed != 0 {
            rows.push(points(Label::PointsRedeemed, l.redeemed));
        }
        rows.push(points(Label::PointsBalance, l.balance));
    }
    let footer = text_lines(&doc.footer);
    if !footer.is_empty() {
        rows.push(Row::Blank);
        for line in footer {
            rows.push(Row::Center(line, false));
        }
    }
    rows
}

/// The lines, totals and payments of the sale.
fn sale_rows(doc: &ReceiptDocument, money: &Fmt<'_>, lang: Lang, rows: &mut Vec<Row>) {
    let pair = |label: Label, minor: i64, bold: bool| {
        Row::Pair(label.text(lang).to_owned(), money.money(minor), bold)
    };
    for line in &doc.lines {
        rows.push(Row::Left(clean(&line.description)));
        rows.push(Row::Pair(
            format!(
                "  {} x {}",
                money.quantity(line.quantity_milli),
                money.money(line.unit_price_minor)
            ),
            money.money(line.amount_minor),
            false,
        ));
        if line.discount_minor != 0 {
            rows.push(Row::Pair(
                format!("  {}", Label::Discount.text(lang)),
                money.money(-line.discount_minor),
                false,
            ));
        }
    }
    rows.push(Row::Rule);
    rows.push(pair(Label::Subtotal, doc.subtotal_minor, false));
    if doc.discount_minor != 0 {
        rows.push(pair(Label::Discount, -doc.discount_minor, false));
    }
    for (label, amount) in tax_lines(doc, money, lang) {
        rows.push(Row::Pair(label, money.money(amount), false));
    }
    rows.push(pair(Label::Total, doc.total_minor, true));
    rows.push(Row::Rule);
    for p in &doc.payments {
        let mut label = method_label(p.method).text(lang).to_owned();
        if let Some(reference) = &p.reference {
            label.push_str(&format!(" ({})", clean(reference)));
        }
        if let Some((code, _)) = &p.gift_card {
            label.push_str(&format!(" {}", clean(code)));
        }
        if let Some(points) = p.points {
            label.push_str(&format!(
                " ({} {})",
                money.quantity(points * 1000),
                Label::PointsShort.text(lang)
            ));
        }
        let shown = p.tendered_minor.unwrap_or(p.amount_minor);
        rows.push(Row::Pair(label, money.money(shown), false));
        if p.change_minor != 0 {
            rows.push(pair(Label::Change, p.change_minor, true));
        }
        if let Some((_, balance)) = &p.gift_card {
            rows.push(Row::Pair(
                format!("  {}", Label::CardBalance.text(lang)),
                money.money(*balance),
                false,
            ));
        }
    }
}

/// Display width in printer columns (a CJK character takes two).
fn width(text: &str) -> usize {
    text.chars().map(|c| c.width().unwrap_or(0)).sum()
}

/// `text` broken into lines of at most `cols` columns: at spaces where it can, inside a word
/// longer than a line where it must. Never empty.
fn wrap(text: &str, cols: usize) -> Vec<String> {
    let cols = cols.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let needed = if line.is_empty() {
            width(word)
        } else {
            width(&line) + 1 + width(word)
        };
        if needed <= cols {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        for c in word.chars() {
            let w = c.width().unwrap_or(0);
            if width(&line) + w > cols && !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            line.push(c);
        }
    }
    lines.push(line);
    lines.into_iter().map(|l| l.trim_end().to_owned()).collect()
}

fn centred(text: &str, cols: usize) -> String {
    let pad = cols.saturating_sub(width(text)) / 2;
    format!("{}{text}", " ".repeat(pad))
}

/// A row laid out as text lines of at most `cols` columns.
fn text_row(row: &Row, cols: usize) -> Vec<String> {
    match row {
        Row::Center(text, _) => wrap(text, cols).iter().map(|l| centred(l, cols)).collect(),
        Row::Left(text) => wrap(text, cols),
        Row::Pair(label, amount, _) => {
            let (lw, aw) = (width(label), width(amount));
            if lw + 1 + aw <= cols {
                vec![format!("{label}{}{amount}", " ".repeat(cols - lw - aw))]
            } else {
                // Too long for one line: the label wrapped, the amount alone at the right.
                let mut lines = wrap(label, cols);
                for a in wrap(amount, cols) {
                    lines.push(format!("{}{a}", " ".repeat(cols.saturating_sub(width(&a)))));
                }
                lines
            }
        }
        Row::Rule => vec!["-".repeat(cols)],
        Row::Blank => vec![String::new()],
    }
}

/// Plain text at `cols` columns.
pub(super) fn text(doc: &ReceiptDocument, money: &MoneyFormat, cols: usize) -> String {
    let mut out = String::new();
    for line in wrap(&clean(&doc.brand_name), cols) {
        out.push_str(&centred(&line, cols));
        out.push('\n');
    }
    let money = Fmt {
        cldr: money,
        paper: true,
    };
    for row in layout(doc, &money) {
        for line in text_row(&row, cols) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

const ESC: u8 = 0x1b;
const GS: u8 = 0x1d;
const FS: u8 = 0x1c;
const LF: u8 = 0x0a;

/// The character table an ESC/POS receipt is sent in, chosen by the receipt's locale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CodePage {
    /// CP858 (`ESC t 19`): CP850's Western European letters with `€` at 0xD5.
    Cp858,
    /// Japanese (ja): Shift_JIS in Kanji mode, for printers with Japanese fonts.
    ShiftJis,
}

impl CodePage {
    fn for_locale(locale: &str) -> Self {
        match Lang::of(locale) {
            Lang::Ja => CodePage::ShiftJis,
            Lang::En | Lang::De => CodePage::Cp858,
        }
    }

    /// The commands that select the table, sent after `ESC @`.
    fn select(self) -> &'static [u8] {
        match self {
            CodePage::Cp858 => &[ESC, b't', 19],
            // The Japanese international set (`ESC R 8`: 0x5C is `¥`), katakana for the
            // single-byte half-width kana (`ESC t 1`), Shift_JIS as the Kanji code
            // (`FS C 1`) and Kanji mode on (`FS &`).
            CodePage::ShiftJis => &[ESC, b'R', 8, ESC, b't', 1, FS, b'C', 1, FS, b'&'],
        }
    }

    /// `text` in this table. A character the table cannot print becomes `?`, twice for a
    /// character two columns wide, so a line keeps its width (a combining mark, no column,
    /// is left out).
    fn encode(self, text: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len());
        let mut buf = [0u8; 4];
        for c in text.chars() {
            let printed = match self {
                CodePage::Cp858 => {
                    oem_cp::encode_char_checked(c, &oem_cp::code_table::ENCODING_TABLE_CP858)
                        .map(|b| out.push(b))
                }
                CodePage::ShiftJis => {
                    let (bytes, _, unmappable) =
                        encoding_rs::SHIFT_JIS.encode(c.encode_utf8(&mut buf));
                    (!unmappable).then(|| out.extend_from_slice(&bytes))
                }
            };
            if printed.is_none() {
                out.extend(std::iter::repeat_n(b'?', c.width().unwrap_or(0)));
            }
        }
        out
    }
}

/// ESC/POS bytes at `cols` columns.
pub(super) fn escpos(doc: &ReceiptDocument, money: &MoneyFormat, cols: usize) -> Vec<u8> {
    let page = CodePage::for_locale(&doc.locale);
    let mut out = vec![ESC, b'@'];
    out.extend_from_slice(page.select());
    // The brand centred, bold, double width and height: half as many columns.
    out.extend_from_slice(&[ESC, b'a', 1, ESC, b'E', 1, GS, b'!', 0x11]);
    for line in wrap(&clean(&doc.brand_name), cols / 2) {
        out.extend_from_slice(&page.encode(&line));
        out.push(LF);
    }
    out.extend_from_slice(&[GS, b'!', 0, ESC, b'E', 0, ESC, b'a', 0]);
    let money = Fmt {
        cldr: money,
        paper: true,
    };
    for row in layout(doc, &money) {
        let bold = matches!(row, Row::Center(_, true) | Row::Pair(_, _, true));
        if bold {
            out.extend_from_slice(&[ESC, b'E', 1]);
        }
        for line in text_row(&row, cols) {
            out.extend_from_slice(&page.encode(&line));
            out.push(LF);
        }
        if bold {
            out.extend_from_slice(&[ESC, b'E', 0]);
        }
    }
    // The receipt number as a QR code (model 2, module size 6, error correction M), centred,
    // with the number under it; a balance slip has no number (and its card's code, which
    // spends the card, is no QR for anyone to scan).
    let number = clean(&doc.number);
    if number.is_empty() {
        out.extend_from_slice(&[GS, b'V', 66, 3]);
        return out;
    }
    let data = number.as_bytes();
    let len = data.len() + 3;
    out.push(LF);
    out.extend_from_slice(&[ESC, b'a', 1]);
    out.extend_from_slice(&[GS, b'(', b'k', 4, 0, 49, 65, 50, 0]);
    out.extend_from_slice(&[GS, b'(', b'k', 3, 0, 49, 67, 6]);
    out.extend_from_slice(&[GS, b'(', b'k', 3, 0, 49, 69, 49]);
    // A receipt number is at most 64 characters, so its length fits pL and pH.
    out.extend_from_slice(&[
        GS,
        b'(',
        b'k',
        (len % 256) as u8,
        (len / 256) as u8,
        49,
        80,
        48,
    ]);
    out.extend_from_slice(data);
    out.extend_from_slice(&[GS, b'(', b'k', 3, 0, 49, 81, 48]);
    out.push(LF);
    out.extend_from_slice(&page.encode(&number));
    out.push(LF);
    out.extend_from_slice(&[ESC, b'a', 0]);
    // Feed three lines and cut (partially: the receipt stays on the roll until torn off).
    out.extend_from_slice(&[GS, b'V', 66, 3]);
    out
}

/// `text` with `& < > " '` escaped for HTML text and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in clean(text).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A self-contained HTML document.
pub(super) fn html(doc: &ReceiptDocument, money: &MoneyFormat) -> String {
    const CELL: &str = "padding:2px 0;vertical-align:top";
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n");
    out.push_str(&format!("<html lang=\"{}\">\n", escape(&doc.locale)));
    let title = if doc.number.is_empty() {
        escape(&doc.brand_name)
    } else {
        format!("{} - {}", escape(&doc.brand_name), escape(&doc.number))
    };
    out.push_str(&format!(
        "<head><meta charset=\"utf-8\"><title>{title}</title></head>\n"
    ));
    out.push_str("<body style=\"margin:0;padding:16px;background:#ffffff;color:#000000\">\n");
    out.push_str(
        "<div style=\"max-width:360px;margin:0 auto;font-family:'Courier New',Courier,monospace;\
         font-size:14px\">\n",
    );
    out.push_str(&format!(
        "<h1 style=\"text-align:center;font-size:20px;margin:0 0 8px\">{}</h1>\n",
        escape(&doc.brand_name)
    ));
    out.push_str("<table style=\"width:100%;border-collapse:collapse\">\n");
    let money = Fmt {
        cldr: money,
        paper: false,
    };
    for row in layout(doc, &money) {
        let line = match row {
            Row::Center(text, bold) => format!(
                "<tr><td colspan=\"2\" style=\"{CELL};text-align:center{}\">{}</td></tr>",
                if bold { ";font-weight:bold" } else { "" },
                escape(&text)
            ),
            Row::Left(text) => {
                format!(
                    "<tr><td colspan=\"2\" style=\"{CELL}\">{}</td></tr>",
                    escape(&text)
                )
            }
            Row::Pair(label, amount, bold) => {
                let weight = if bold { ";font-weight:bold" } else { "" };
                format!(
                    "<tr><td style=\"{CELL}{weight};white-space:pre-wrap\">{}</td>\
                     <td style=\"{CELL}{weight};text-align:right;white-space:nowrap\">{}</td></tr>",
                    escape(&label),
                    escape(&amount)
                )
            }
            Row::Rule => "<tr><td colspan=\"2\" style=\"border-top:1px dashed #000000;padding:0;\
                          height:4px\"></td></tr>"
                .to_owned(),
            Row::Blank => "<tr><td colspan=\"2\" style=\"height:8px\"></td></tr>".to_owned(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str("</table>\n</div>\n</body>\n</html>\n");
    out
}
