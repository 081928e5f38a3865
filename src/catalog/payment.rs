//! How money is paid: one typed enum for the words the payment tables accept, the order reports
//! list them in, and the methods the POS flows take and give back.

use serde::{Deserialize, Serialize};

use crate::tenant::settings::text_enum;

/// How a sale or a layaway is paid. Its words ([`PaymentMethod::WORDS`]) are what
/// `sale_payments.method` and `layaway_payments.method` accept, and their order is the order
/// reports list methods in ([`crate::pos::PAYMENT_METHOD_ORDER`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PaymentMethod {
    /// Cash; the only method that gives change.
    Cash,
    /// A payment card, by the card terminal's authorisation reference.
    Card,
    /// A gift card of the tenant.
    GiftCard,
    /// The customer's store credit account.
    StoreCredit,
    /// The customer's loyalty points.
    Loyalty,
}
text_enum!(PaymentMethod, "payment method", {
    Cash => "cash",
    Card => "card",
    GiftCard => "gift_card",
    StoreCredit => "store_credit",
    Loyalty => "loyalty",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_method_reads_back_from_its_word() {
        assert_eq!(PaymentMethod::WORDS.len(), PaymentMethod::ALL.len());
        for (m, w) in PaymentMethod::ALL.iter().zip(PaymentMethod::WORDS) {
            assert_eq!(m.as_str(), *w);
            assert_eq!(w.parse::<PaymentMethod>(), Ok(*m));
            // Serde spells it as the table stores it.
            assert_eq!(serde_json::to_value(m).ok(), Some(serde_json::json!(w)));
        }
        assert!("cheque".parse::<PaymentMethod>().is_err());
    }
}
