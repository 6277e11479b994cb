"""Alembic environment: runs customer-api's migrations on its async engine (SQLite or PostgreSQL)."""

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

# Importing the models registers their tables on the metadata the migrations compare against.
import customer_api.analytics.models
import customer_api.customers.models
import customer_api.interactions.models
import customer_api.purchases.models  # noqa: F401
from crm_kit.db import make_engine
from customer_api.config import Settings
from customer_api.db import all_metadata

config = context.config


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or Settings().resolved_database_url


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=all_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = make_engine(_url())
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=all_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
