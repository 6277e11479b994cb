"""Following customer-api's customer feed: fresh snapshots, higher priorities, merges, erasure."""
