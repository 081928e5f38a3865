//! Work orders: a job on a customer's vehicle, its parts and labour, completed into a sale.
