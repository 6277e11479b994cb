"""Typed clients for the peers complaint-api calls."""
