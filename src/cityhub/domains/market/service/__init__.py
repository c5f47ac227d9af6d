"""Market business logic: merchants, stores and nearby search, batches, coupons and redemption."""
