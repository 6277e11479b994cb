"""Shared kit of the retail CRM services. Imported by services; has no entry points of its own."""
