"""Callback requests: "leave your number and an agent calls you back", with their own queue and SLA."""
