"""The recommendation engine: numpy/scipy models built from purchase lines, their evaluation, association rules."""
