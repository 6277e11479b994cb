"""Fixtures: customer-api on a fresh SQLite and a fresh PostgreSQL database, driven over ASGI."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from crm_kit.health import upgrade_database
from crm_kit.settings import ApiKeyConfig, hash_api_key
from crm_kit.testing import BACKENDS, empty_tables, temporary_database
from customer_api.config import Settings
from customer_api.db import all_metadata
from customer_api.main import ALEMBIC_INI, create_app

DEV_KEY = "dev-admin-key"
# name -> (key, scopes): narrow keys for the authorization tests.
KEYS = {
    "reader": ("reader-key-0001", ["customers:read"]),
    "pii-reader": ("pii-reader-key-0001", ["customers:read", "customers:pii"]),
    "pos": ("pos-key-0001", ["purchases:write", "purchases:read"]),
    "feeds": ("feeds-key-0001", ["feeds:read"]),
}


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
async def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with temporary_database(backend, "customer_api_test", tmp_path_factory.mktemp("db")) as url:
        await asyncio.to_thread(upgrade_database, ALEMBIC_INI, url)
        yield url


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        data_dir=Path(tmp_path_factory.mktemp("data")),
        access_log=False,
        api_keys=[ApiKeyConfig(name=n, sha256=hash_api_key(k), scopes=s) for n, (k, s) in KEYS.items()],
    )


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://customer-api",
        headers={"Authorization": f"Bearer {DEV_KEY}"},
    ) as http:
        yield http
    await empty_tables(app.state.database, all_metadata)


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[name][0]}"}
