"""Complaint statistics: volume, first-contact resolution, response and resolution times, SLA, satisfaction."""
