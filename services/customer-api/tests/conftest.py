"""Fixtures: customer-api on a fresh SQLite and a fresh PostgreSQL database, driven over ASGI."""

from __future__ import annotations

from crm_kit.testing import service_fixtures
from customer_api.config import Settings
from customer_api.db import all_metadata
from customer_api.main import ALEMBIC_INI, create_app

# name -> (key, scopes): narrow keys for the authorization tests.
KEYS = {
    "reader": ("reader-key-0001", ["customers:read"]),
    "pii-reader": ("pii-reader-key-0001", ["customers:read", "customers:pii"]),
    "pos": ("pos-key-0001", ["purchases:write", "purchases:read"]),
    "feeds": ("feeds-key-0001", ["feeds:read"]),
}

backend, database_url, settings, app, client = service_fixtures(
    prefix="customer_api_test",
    make_settings=Settings,
    make_app=create_app,
    alembic_ini=ALEMBIC_INI,
    metadata=all_metadata,
    keys=KEYS,
)


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[name][0]}"}
