"""Model builds: requested, claimed by one replica, built from the synced purchases, stored, then served."""
