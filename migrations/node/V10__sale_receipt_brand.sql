-- What a sale's receipt shows of the tenant's settings (brand name, header, footer, locale, tax
-- rates), copied onto the sale when it is made: a receipt reprinted after a rebrand, on this
-- terminal or on one the sale synced to, must show what was printed the first time. JSON (the
-- crate's ReceiptBrand); NULL for sales made before this column existed, adopted from a store
-- that never had it, or synced from a terminal that does not write it: their receipts use the
-- settings of the day and say so.
ALTER TABLE sales ADD COLUMN receipt_brand TEXT
    CHECK (receipt_brand IS NULL OR json_valid(receipt_brand));
