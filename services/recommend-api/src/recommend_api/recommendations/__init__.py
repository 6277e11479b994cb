"""Serving recommendations from the model in memory: no database query on the hot path."""
