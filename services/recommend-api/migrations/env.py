"""Alembic environment of recommend-api."""

# Importing the models registers their tables on the metadata the migrations compare against.
import recommend_api.models  # noqa: F401
from crm_kit.migrations import run_migrations
from recommend_api.config import Settings
from recommend_api.db import all_metadata

run_migrations(all_metadata, Settings().resolved_database_url)
