"""Running a service's Alembic migrations on its async engine (SQLite or PostgreSQL).

Each service's `migrations/env.py` imports its models and calls `run_migrations` with its metadata.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from alembic import context
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from crm_kit.db import make_engine


def run_migrations(metadata: Sequence[MetaData], default_url: str) -> None:
    config = context.config
    url = config.get_main_option("sqlalchemy.url") or default_url

    def run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=list(metadata),
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        # SQLite's own procedure for changing a table: foreign keys off while batch mode rebuilds it (it drops the old
        # table, and with them on that deletes, or cascades to, the rows that refer to it), then a check that every
        # row still has its parent before the migration commits.
        engine = make_engine(url, foreign_keys=False)
        async with engine.connect() as connection:
            await connection.run_sync(run)
            if connection.dialect.name == "sqlite":
                orphans = (await connection.exec_driver_sql("PRAGMA foreign_key_check")).all()
                if orphans:
                    raise RuntimeError(f"the migration left rows without their parent: {orphans[:5]}")
            await connection.commit()
        await engine.dispose()

    if context.is_offline_mode():
        context.configure(url=url, target_metadata=list(metadata), literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(run_async())
