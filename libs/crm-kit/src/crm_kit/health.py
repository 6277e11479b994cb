"""`/healthz` (the process answers), `/readyz` (database reachable, migrations at head), `/metrics`."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import inspect, text

from crm_kit.db import Database


def alembic_config(alembic_ini: Path, database_url: str) -> Config:
    config = Config(str(alembic_ini))
    config.set_main_option("script_location", str(alembic_ini.parent / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def migration_heads(alembic_ini: Path) -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config(alembic_ini, "sqlite://")).get_heads())


async def current_revisions(database: Database) -> set[str]:
    """The migrations the database is at; none for a database without the schema yet."""
    async with database.engine.connect() as conn:
        if not await conn.run_sync(lambda sync: inspect(sync).has_table("alembic_version")):
            return set()
        rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
        return {r[0] for r in rows}


def health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get(
        "/healthz",
        summary="Liveness: the process answers",
        description="For the orchestrator's liveness probe: answers while the process runs, without touching the "
        "database. Public: needs no API key.",
        responses={200: {"content": {"application/json": {"example": {"status": "ok"}}}}},
    )
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness: database reachable and migrations at head",
        description="For the load balancer's readiness probe: 200 once the database answers and its schema is at "
        "the migrations' head, 503 otherwise. Public: needs no API key.",
        responses={
            200: {
                "description": "Ready",
                "content": {
                    "application/json": {
                        "example": {"status": "ready", "database": "ok", "migrations": ["7603c38dd3f8"]}
                    }
                },
            },
            503: {
                "description": "Not ready: database unreachable or migrations behind",
                "content": {
                    "application/json": {
                        "example": {
                            "status": "migrating",
                            "database": "ok",
                            "at": ["22e834a16932"],
                            "head": ["7603c38dd3f8"],
                        }
                    }
                },
            },
        },
    )
    async def readyz(request: Request) -> JSONResponse:
        database: Database = request.app.state.database
        heads: set[str] = request.app.state.migration_heads
        try:
            # Bounded: a database that went silent on an open connection answers nothing at all.
            async with asyncio.timeout(database.connect_timeout):
                revisions = await current_revisions(database)
        except Exception as exc:  # noqa: BLE001 - any failure here means "not ready", said in the body
            return JSONResponse({"status": "unavailable", "database": type(exc).__name__}, status_code=503)
        if revisions != heads:
            return JSONResponse(
                {"status": "migrating", "database": "ok", "at": sorted(revisions), "head": sorted(heads)},
                status_code=503,
            )
        return JSONResponse({"status": "ready", "database": "ok", "migrations": sorted(heads)})

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        description="Request counts and latencies in the Prometheus text format, for scraping. Public: needs no "
        "API key.",
        response_class=Response,
    )
    async def metrics(request: Request) -> Response:
        return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router


def upgrade_database(alembic_ini: Path, database_url: str, revision: str = "head") -> None:
    """Apply migrations (blocking; run it in a thread from async code)."""
    command.upgrade(alembic_config(alembic_ini, database_url), revision)
