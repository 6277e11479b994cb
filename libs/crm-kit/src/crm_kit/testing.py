"""Test support shared by every service's suite: throw-away databases on SQLite and PostgreSQL.

Each test run creates its own databases and drops them afterwards. PostgreSQL is mandatory in CI
(`CI=true`) or with `CRM_REQUIRE_POSTGRES=1`; elsewhere, a machine without it runs the SQLite half
and the PostgreSQL half is reported as skipped.
"""

from __future__ import annotations

import asyncio
import os
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import MetaData, delete

from crm_kit.db import Database, make_engine
from crm_kit.health import upgrade_database
from crm_kit.settings import DEV_API_KEY, ApiKeyConfig, ServiceSettings, hash_api_key

BACKENDS = ("sqlite", "postgresql")
DEV_KEY = DEV_API_KEY
SettingsT = TypeVar("SettingsT", bound=ServiceSettings)
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def postgres_admin_url() -> str:
    return os.environ.get("CRM_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL)


def postgres_required() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"} or os.environ.get("CRM_REQUIRE_POSTGRES") == "1"


async def _admin_connection() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(postgres_admin_url(), timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        message = f"PostgreSQL is not reachable at {postgres_admin_url()} ({exc})"
        if postgres_required():
            pytest.fail(message + "; it is required in CI", pytrace=False)
        pytest.skip(message + "; the PostgreSQL half of the tests was skipped")


def _async_url(admin_url: str, database: str) -> str:
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{database}"


@asynccontextmanager
async def temporary_database(backend: str, prefix: str, directory: Path) -> AsyncIterator[str]:
    """Yield the URL of a new, empty database of `backend`; drop it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / (name + '.db')}"
        return
    admin = await _admin_connection()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield _async_url(postgres_admin_url(), name)
    finally:
        admin = await _admin_connection()
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def schema_drift(database_url: str, metadatas: Iterable[MetaData]) -> list[Any]:
    """What Alembic's autogenerate would change (tables, columns, types, indexes) to make the database at
    `database_url` match the models' `metadatas`: empty when the migrations build what the models declare."""
    models = MetaData()
    for metadata in metadatas:
        for table in metadata.tables.values():
            table.to_metadata(models)
    engine = make_engine(database_url)
    try:
        async with engine.connect() as connection:
            with warnings.catch_warnings():  # SQLite cannot reflect expression indexes, so they are not compared
                warnings.filterwarnings("ignore", "(Skipped unsupported reflection|autogenerate skipping).*expression")
                return await connection.run_sync(
                    lambda sync: compare_metadata(MigrationContext.configure(sync, opts={"compare_type": True}), models)
                )
    finally:
        await engine.dispose()


async def empty_tables(database: Database, metadatas: Iterable[MetaData]) -> None:
    """Delete every row (children first), keeping the schema and its migration stamp."""
    async with database.session_scope() as session:
        for metadata in metadatas:
            for table in reversed(metadata.sorted_tables):
                await session.execute(delete(table))


@asynccontextmanager
async def own_database(
    backend: str, settings: SettingsT, *, prefix: str, alembic_ini: Path, directory: Path
) -> AsyncIterator[tuple[Database, SettingsT]]:
    """A migrated database of its own and `settings` pointing at it: where no replica but the test's own runs
    background jobs (the suite's app polls its database, not this one)."""
    async with temporary_database(backend, prefix, directory) as url:
        await asyncio.to_thread(upgrade_database, alembic_ini, url)
        database = Database(url)
        try:
            yield database, settings.model_copy(update={"database_url": url})
        finally:
            await database.dispose()


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """`app` with its lifespan running (its background jobs too), and a client of it with the dev key."""
    headers = {"Authorization": f"Bearer {DEV_KEY}"}
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test", headers=headers) as client,
    ):
        yield client


async def poll_status(client: httpx.AsyncClient, url: str, *, while_in: Iterable[str]) -> dict[str, Any]:
    """GET `url` until its `status` leaves `while_in` (a job's pending states), for up to 30 s; the last body."""
    pending = set(while_in)
    for _ in range(600):
        body: dict[str, Any] = (await client.get(url)).json()
        if body["status"] not in pending:
            return body
        await asyncio.sleep(0.05)
    return body


def assert_setting_refused(
    settings: type[ServiceSettings], monkeypatch: pytest.MonkeyPatch, variable: str, value: str, complaint: str
) -> None:
    """Reading `settings` with `variable=value` in the environment fails with `complaint`, naming the variable."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=complaint) as caught:
        settings()
    assert variable in str(caught.value)


def service_fixtures(
    *,
    prefix: str,
    make_settings: Callable[..., ServiceSettings],
    make_app: Callable[[Any], FastAPI],
    alembic_ini: Path,
    metadata: Iterable[MetaData],
    keys: dict[str, tuple[str, list[str]]],
) -> tuple[Any, ...]:
    """The standard fixtures of a service's suite, to assign at a conftest's top level:

        backend, database_url, settings, app, client = service_fixtures(...)

    `backend` runs the suite once per database; `app` is the service with its lifespan running on a
    migrated throw-away database; `client` talks to it over ASGI with the dev key and empties every
    table after each test. `keys` are extra API keys, name → (key, scopes).
    """
    tables = list(metadata)

    @pytest.fixture(scope="session", params=BACKENDS)
    def backend(request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture(scope="session")
    async def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
        async with temporary_database(backend, prefix, tmp_path_factory.mktemp("db")) as url:
            await asyncio.to_thread(upgrade_database, alembic_ini, url)
            yield url

    @pytest.fixture(scope="session")
    def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> ServiceSettings:
        return make_settings(
            environment="test",
            database_url=database_url,
            data_dir=tmp_path_factory.mktemp("data"),
            access_log=False,
            api_keys=[ApiKeyConfig(name=n, sha256=hash_api_key(k), scopes=s) for n, (k, s) in keys.items()],
        )

    @pytest.fixture(scope="session")
    async def app(settings: ServiceSettings) -> AsyncIterator[FastAPI]:
        application = make_app(settings)
        async with LifespanManager(application):
            yield application

    @pytest.fixture
    async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://test",
            headers={"Authorization": f"Bearer {DEV_KEY}"},
        ) as http:
            yield http
        await empty_tables(app.state.database, tables)

    return backend, database_url, settings, app, client
