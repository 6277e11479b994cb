"""Each service's migrations, on a fresh SQLite and PostgreSQL database: they build exactly the schema its models
declare (the tables, columns, types and indexes Alembic's autogenerate compares), and they go all the way down and
up again to the same schema."""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path

import pytest
from alembic import command

from crm_kit.health import alembic_config, upgrade_database
from crm_kit.testing import BACKENDS, schema_drift, temporary_database

SERVICES = ("customer_api", "complaint_api", "recommend_api")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("package", SERVICES)
async def test_the_migrations_build_the_schema_the_models_declare_down_and_up(
    package: str, backend: str, tmp_path: Path
) -> None:
    alembic_ini = importlib.import_module(f"{package}.main").ALEMBIC_INI
    metadata = importlib.import_module(f"{package}.db").all_metadata
    async with temporary_database(backend, f"{package}_migrations", tmp_path) as url:
        await asyncio.to_thread(upgrade_database, alembic_ini, url)
        assert await schema_drift(url, metadata) == []
        await asyncio.to_thread(command.downgrade, alembic_config(alembic_ini, url), "base")
        await asyncio.to_thread(upgrade_database, alembic_ini, url)
        assert await schema_drift(url, metadata) == []
