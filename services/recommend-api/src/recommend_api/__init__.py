"""recommend-api: cross-sell from purchase history (连锁效应)."""
