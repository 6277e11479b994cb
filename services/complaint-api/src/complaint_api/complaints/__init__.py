"""Complaints: intake, the lifecycle of DESIGN §3, priority, the timeline, satisfaction."""
