"""Alembic environment of customer-api."""

# Importing the models registers their tables on the metadata the migrations compare against.
import customer_api.analytics.models
import customer_api.customers.models
import customer_api.interactions.models
import customer_api.purchases.models  # noqa: F401
from crm_kit.migrations import run_migrations
from customer_api.config import Settings
from customer_api.db import all_metadata

run_migrations(all_metadata, Settings().resolved_database_url)
