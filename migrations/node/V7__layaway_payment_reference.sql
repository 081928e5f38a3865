-- The card terminal's reference of a layaway payment by card, as sale_payments.reference keeps
-- it for a sale: a card payment, and the negative card row that gives it back when the layaway
-- is cancelled, must be traceable to the card transaction. NULL for cash, and for rows written
-- before this column existed (or adopted from a store that never had it).
ALTER TABLE layaway_payments ADD COLUMN reference TEXT;
