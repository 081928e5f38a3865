//! The fixed words a receipt prints ("Subtotal", "Change"), one table: English, German and
//! Japanese, chosen by the language of the receipt's locale (`de-AT` prints German, `ja-JP`
//! Japanese), English for any other. Money, quantities and rates are the locale's own from
//! CLDR ([`super::MoneyFormat`]); only these words are kept here.

/// A language the labels are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lang {
    /// English, and every language without a column of its own.
    En,
    /// German.
    De,
    /// Japanese.
    Ja,
}

impl Lang {
    /// The labels' language for a BCP 47 locale: its language subtag's, English when it has no
    /// column or the tag does not parse.
    pub(super) fn of(locale: &str) -> Self {
        match icu_locale_core::Locale::try_from_str(locale) {
            Ok(l) if l.id.language.as_str() == "de" => Lang::De,
            Ok(l) if l.id.language.as_str() == "ja" => Lang::Ja,
            _ => Lang::En,
        }
    }
}

/// A fixed word or phrase of a receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Label {
    Receipt,
    RefundOf,
    VoidOf,
    Date,
    Cashier,
    Terminal,
    BrandAsOfPrinting,
    SaleKeptNone,
    Reason,
    Discount,
    Subtotal,
    Tax,
    Total,
    Cash,
    Card,
    GiftCard,
    StoreCredit,
    Points,
    PointsShort,
    Change,
    CardBalance,
    LoyaltyCard,
    PointsEarned,
    PointsRedeemed,
    PointsBalance,
    RefundBanner,
    VoidBanner,
    LayawayPaymentBanner,
    LayawayRefundBanner,
    LayawayCompletedBanner,
    InvoiceBanner,
    GiftCardBalanceBanner,
    Layaway,
    Paid,
    Due,
    WorkOrder,
    Vehicle,
    Plate,
    Odometer,
    Technician,
    Job,
    Balance,
    Expires,
    Blocked,
}

impl Label {
    /// The label's text in `lang`.
    pub(super) fn text(self, lang: Lang) -> &'static str {
        // English, German, Japanese.
        let [en, de, ja] = match self {
            Label::Receipt => ["Receipt", "Beleg", "レシート"],
            Label::RefundOf => ["Refund of", "Erstattung zu", "返品元"],
            Label::VoidOf => ["Void of", "Storno zu", "取消元"],
            Label::Date => ["Date", "Datum", "日時"],
            Label::Cashier => ["Cashier", "Bediener", "担当"],
            Label::Terminal => ["Terminal", "Kasse", "レジ"],
            Label::BrandAsOfPrinting => [
                "Brand as of printing",
                "Marke vom Druckzeitpunkt",
                "印刷時の店舗情報",
            ],
            Label::SaleKeptNone => [
                "Brand as of printing: sale kept none",
                "Marke vom Druckzeitpunkt: Verkauf speicherte keine",
                "印刷時の店舗情報（販売時の記録なし）",
            ],
            Label::Reason => ["Reason", "Grund", "理由"],
            Label::Discount => ["Discount", "Rabatt", "値引"],
            Label::Subtotal => ["Subtotal", "Zwischensumme", "小計"],
            Label::Tax => ["Tax", "Steuer", "税"],
            Label::Total => ["TOTAL", "SUMME", "合計"],
            Label::Cash => ["Cash", "Bar", "現金"],
            Label::Card => ["Card", "Karte", "カード"],
            Label::GiftCard => ["Gift card", "Geschenkkarte", "ギフトカード"],
            Label::StoreCredit => ["Store credit", "Kundenkonto", "売掛"],
            Label::Points => ["Points", "Punkte", "ポイント"],
            Label::PointsShort => ["pts", "Pkt.", "pt"],
            Label::Change => ["Change", "Rückgeld", "お釣り"],
            Label::CardBalance => ["Card balance", "Kartenguthaben", "カード残高"],
            Label::LoyaltyCard => ["Loyalty card", "Kundenkarte", "会員カード"],
            Label::PointsEarned => ["Points earned", "Punkte gesammelt", "獲得ポイント"],
            Label::PointsRedeemed => ["Points redeemed", "Punkte eingelöst", "利用ポイント"],
            Label::PointsBalance => ["Points balance", "Punktestand", "ポイント残高"],
            Label::RefundBanner => ["REFUND", "ERSTATTUNG", "返品"],
            Label::VoidBanner => ["VOID", "STORNO", "取消"],
            Label::LayawayPaymentBanner => [
                "LAYAWAY PAYMENT",
                "ZAHLUNG AUF RESERVIERUNG",
                "取り置き 入金",
            ],
            Label::LayawayRefundBanner => [
                "LAYAWAY REFUND",
                "ERSTATTUNG DER RESERVIERUNG",
                "取り置き 返金",
            ],
            Label::LayawayCompletedBanner => [
                "LAYAWAY COMPLETED",
                "RESERVIERUNG ABGESCHLOSSEN",
                "取り置き 完了",
            ],
            Label::InvoiceBanner => ["INVOICE", "RECHNUNG", "請求書"],
            Label::GiftCardBalanceBanner => [
                "GIFT CARD BALANCE",
                "GESCHENKKARTE: GUTHABEN",
                "ギフトカード残高",
            ],
            Label::Layaway => ["Layaway", "Reservierung", "取り置き"],
            Label::Paid => ["Paid", "Bezahlt", "入金済"],
            Label::Due => ["Due", "Offen", "残額"],
            Label::WorkOrder => ["Work order", "Auftrag", "作業指示"],
            Label::Vehicle => ["Vehicle", "Fahrzeug", "車両"],
            Label::Plate => ["Plate", "Kennzeichen", "ナンバー"],
            Label::Odometer => ["Odometer", "Kilometerstand", "走行距離"],
            Label::Technician => ["Technician", "Techniker", "整備士"],
            Label::Job => ["Job", "Arbeiten", "作業内容"],
            Label::Balance => ["Balance", "Guthaben", "残高"],
            Label::Expires => ["Expires", "Gültig bis", "有効期限"],
            Label::Blocked => ["Blocked", "Gesperrt", "利用停止"],
        };
        match lang {
            Lang::En => en,
            Lang::De => de,
            Lang::Ja => ja,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Label, Lang};

    #[test]
    fn the_language_of_the_locale_chooses_the_labels_and_english_is_the_fallback() {
        assert_eq!(Lang::of("de-DE"), Lang::De);
        assert_eq!(Lang::of("de-AT"), Lang::De);
        assert_eq!(Lang::of("ja-JP"), Lang::Ja);
        assert_eq!(Lang::of("en-US"), Lang::En);
        assert_eq!(Lang::of("fr-FR"), Lang::En);
        assert_eq!(Lang::of("not a locale!"), Lang::En);
        assert_eq!(Label::Change.text(Lang::De), "Rückgeld");
        assert_eq!(Label::Total.text(Lang::Ja), "合計");
        assert_eq!(Label::Subtotal.text(Lang::En), "Subtotal");
    }
}
