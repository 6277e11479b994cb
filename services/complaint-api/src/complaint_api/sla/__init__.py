"""SLA: business-hours calendar, policies per priority, the breach sweep."""
