//! Layaways: goods put aside against a deposit and part payments; stock leaves on completion.
