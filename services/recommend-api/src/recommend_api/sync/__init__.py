"""Keeping recommend-api's copy of purchases and customer states in step with customer-api's feeds."""
