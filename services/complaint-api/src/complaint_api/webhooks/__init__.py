"""Signed webhooks: complaint events pushed to subscribers' URLs, in order per complaint, retried until delivered."""
