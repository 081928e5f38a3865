//! Reports through the tenant handle: a day's sales by payment type, stock below reorder level, a customer's history.
