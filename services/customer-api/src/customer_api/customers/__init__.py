"""Customer profiles: individuals, groups and suppliers, consents, merges, PIPL rights, the change feed."""
