"""Test support shared by every service's suite: throw-away databases on SQLite and PostgreSQL.

Each test run creates its own databases and drops them afterwards. PostgreSQL is mandatory in CI
(`CI=true`) or with `CRM_REQUIRE_POSTGRES=1`; elsewhere, a machine without it runs the SQLite half
and the PostgreSQL half is reported as skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import MetaData, delete

from crm_kit.db import Database

BACKENDS = ("sqlite", "postgresql")
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


async def empty_tables(database: Database, metadatas: Iterable[MetaData]) -> None:
    """Delete every row (children first), keeping the schema and its migration stamp."""
    async with database.session_scope() as session:
        for metadata in metadatas:
            for table in reversed(metadata.sorted_tables):
                await session.execute(delete(table))
