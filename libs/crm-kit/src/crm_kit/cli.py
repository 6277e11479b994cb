"""The commands every service's command line has: `migrate` and `serve`; and the check its other commands make
that the database has the schema they write to."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from crm_kit.db import Database
from crm_kit.health import current_revisions, migration_heads, upgrade_database
from crm_kit.settings import ServiceSettings

GRACEFUL_SHUTDOWN_SECONDS = 10


async def _revisions(url: str) -> set[str]:
    """The migrations a database is at; none for a new one."""
    database = Database(url)
    try:
        return await current_revisions(database)
    finally:
        await database.dispose()


@contextlib.contextmanager
def _database_reached(url: str) -> Iterator[None]:
    """A database that does not answer, refuses the login, or that the URL cannot name: a message and exit 1, not a
    traceback. The URL is shown without its password."""
    try:
        yield
    except (OSError, TimeoutError, DBAPIError, ArgumentError, NoSuchModuleError, ModuleNotFoundError) as exc:
        try:
            where = make_url(url).render_as_string(hide_password=True)
        except ArgumentError:
            where = "DATABASE_URL"
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0] or type(exc).__name__
        typer.echo(f"cannot use the database {where}: {reason}", err=True)
        raise typer.Exit(1) from None


def add_service_commands(
    app: typer.Typer,
    *,
    alembic_ini: Path,
    settings: Callable[[], ServiceSettings],
    factory: str,
    default_port: int,
) -> Callable[[], None]:
    """Add `migrate` and `serve` to a service's typer app; `factory` is the `module:function` of its app. Returns
    the check a command that reads or writes the service's tables runs first: on a database without the schema
    (new, or from an older release) it stops with what to run, not a traceback about a missing table."""

    def read_settings() -> ServiceSettings:
        """The settings, or exit 3 with what is wrong (the variables named), not a traceback."""
        try:
            return settings()
        except ValidationError as exc:
            typer.echo(f"configuration: {exc}", err=True)
            raise typer.Exit(3) from None

    @app.command()
    def migrate() -> None:
        """Apply database migrations up to the newest."""
        url = read_settings().resolved_database_url
        with _database_reached(url):
            upgrade_database(alembic_ini, url)
        typer.echo("migrations applied")

    @app.command()
    def serve(
        host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port")] = default_port,
        migrate_first: Annotated[bool, typer.Option("--migrate/--no-migrate", help="Apply migrations first")] = True,
    ) -> None:
        """Serve the API with uvicorn."""
        import uvicorn

        service = read_settings()  # a bad setting stops here, with its variable named, before uvicorn starts
        if migrate_first:
            # Silently: once serving, stdout carries JSON log lines only.
            with _database_reached(service.resolved_database_url):
                upgrade_database(alembic_ini, service.resolved_database_url)
        uvicorn.run(
            factory,
            factory=True,
            host=host,
            port=port,
            access_log=False,
            proxy_headers=True,
            # On SIGTERM, requests in flight get this long to finish; a deployment waits for no more.
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            log_config=None,  # the app configures JSON logging for every logger, uvicorn's included
        )

    def require_schema() -> None:
        service = read_settings()
        with _database_reached(service.resolved_database_url):
            at = asyncio.run(_revisions(service.resolved_database_url))
        head = migration_heads(alembic_ini)
        if at != head:
            found = f"is at migration {', '.join(sorted(at))}, not {', '.join(sorted(head))}" if at else "has no schema"
            typer.echo(f"the database {found}: run `{service.service_name} migrate` first")
            raise typer.Exit(1)

    return require_schema
