"""`complaint-api` command line: migrations, serving, the starter knowledge base."""

from __future__ import annotations

import asyncio

import typer

from complaint_api.config import Settings
from complaint_api.main import ALEMBIC_INI
from crm_kit.cli import add_service_commands
from crm_kit.db import Database

app = typer.Typer(help="complaint-api: the complaint service of the retail CRM.", no_args_is_help=True)
require_schema = add_service_commands(
    app, alembic_ini=ALEMBIC_INI, settings=Settings, factory="complaint_api.main:create_app", default_port=8002
)


@app.command("seed-kb")
def seed_kb() -> None:
    """Load the starter knowledge base (the store's policy and service manual); existing articles stay."""
    from complaint_api.kb.seed import seed_articles

    require_schema()

    async def run() -> tuple[int, int]:
        database = Database(Settings().resolved_database_url)
        try:
            async with database.session_scope() as session:
                return await seed_articles(session)
        finally:
            await database.dispose()

    created, present = asyncio.run(run())
    typer.echo(f"knowledge base: {created} articles added, {present} already present")
