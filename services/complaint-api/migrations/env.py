"""Alembic environment of complaint-api."""

# Importing the models registers their tables on the metadata the migrations compare against.
import complaint_api.models  # noqa: F401
from complaint_api.config import Settings
from complaint_api.db import all_metadata
from crm_kit.migrations import run_migrations

run_migrations(all_metadata, Settings().resolved_database_url)
