"""The commands every service's command line has: `migrate` and `serve`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from crm_kit.health import upgrade_database
from crm_kit.settings import ServiceSettings


def add_service_commands(
    app: typer.Typer,
    *,
    alembic_ini: Path,
    settings: Callable[[], ServiceSettings],
    factory: str,
    default_port: int,
) -> None:
    """Add `migrate` and `serve` to a service's typer app; `factory` is the `module:function` of its app."""

    @app.command()
    def migrate() -> None:
        """Apply database migrations up to the newest."""
        upgrade_database(alembic_ini, settings().resolved_database_url)
        typer.echo("migrations applied")

    @app.command()
    def serve(
        host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port")] = default_port,
        migrate_first: Annotated[bool, typer.Option("--migrate/--no-migrate", help="Apply migrations first")] = True,
    ) -> None:
        """Serve the API with uvicorn."""
        import uvicorn

        if migrate_first:
            # Silently: once serving, stdout carries JSON log lines only.
            upgrade_database(alembic_ini, settings().resolved_database_url)
        uvicorn.run(
            factory,
            factory=True,
            host=host,
            port=port,
            access_log=False,
            proxy_headers=True,
            log_config=None,  # the app configures JSON logging for every logger, uvicorn's included
        )
