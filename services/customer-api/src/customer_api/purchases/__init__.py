"""Purchases: orders with line items, single and bulk intake, per-customer history, the purchase feed."""
