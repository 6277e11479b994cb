"""Fixtures: recommend-api on a fresh SQLite and a fresh PostgreSQL database, driven over ASGI.

customer-api is not running for this suite (its URL is a closed port); purchases are written into the
service's own tables as the sync would. Tests where the two talk run both services (root tests/).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any

import httpx
from fastapi import FastAPI

from crm_kit.db import Database, insert_ignore, upsert, utcnow
from crm_kit.testing import service_fixtures
from recommend_api.config import Settings
from recommend_api.db import all_metadata
from recommend_api.main import ALEMBIC_INI, create_app
from recommend_api.sync.models import Item, PurchaseLine

KEYS = {
    "reader": ("reader-key-0001", ["recommendations:read"]),
    "outsider": ("outsider-key-0001", ["customers:read"]),
}
UNREACHABLE_CUSTOMER_API = "http://127.0.0.1:9"
T0 = dt.datetime(2026, 10, 1, 10, 0, tzinfo=dt.UTC)


def _settings(**values: Any) -> Settings:
    return Settings(
        customer_api_url=UNREACHABLE_CUSTOMER_API, model_poll_seconds=0.1, sync_seconds=3600, rebuild_minutes=0,
        **values,
    )  # fmt: skip


backend, database_url, settings, app, client = service_fixtures(
    prefix="recommend_api_test",
    make_settings=_settings,
    make_app=create_app,
    alembic_ini=ALEMBIC_INI,
    metadata=all_metadata,
    keys=KEYS,
)


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[name][0]}"}


def customer(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


async def add_baskets(
    app: FastAPI, baskets: Iterable[tuple[int, list[str]]], *, categories: dict[str, str] | None = None,
    start: dt.datetime = T0,
) -> None:  # fmt: skip
    """Store baskets (customer number, skus) as synced order lines, one day apart in the given order."""
    database: Database = app.state.database
    lines: list[dict[str, Any]] = []
    skus: set[str] = set()
    for i, (who, items) in enumerate(baskets):
        for n, sku in enumerate(items, start=1):
            lines.append(
                {"order_id": f"T-{i}-{who}-{start.timestamp():.0f}", "line_no": n, "customer_id": customer(who),
                 "sku": sku, "quantity": 1.0, "purchased_at": start + dt.timedelta(days=i), "sequence": i}
            )  # fmt: skip
            skus.add(sku)
    rows = [{"sku": s, "name": f"商品{s}", "category": (categories or {}).get(s), "updated_at": utcnow()} for s in skus]
    async with database.session_scope() as session:
        await insert_ignore(session, PurchaseLine.__table__, lines)
        await upsert(session, Item.__table__, sorted(rows, key=lambda r: r["sku"]), key=["sku"])


async def build_model(client: httpx.AsyncClient, *, evaluate: bool = False) -> int:
    """Ask for a build and wait (up to a minute) until this replica serves it; returns the version."""
    response = await client.post("/v1/models", json={"evaluate": evaluate})
    assert response.status_code == 202, response.text
    version = int(response.json()["version"])
    async with asyncio.timeout(60):
        while True:
            current = await client.get("/v1/models/current")
            if current.status_code == 200 and current.json()["version"] >= version:
                return version
            build = (await client.get(f"/v1/models/{version}")).json()
            assert build["status"] != "failed", build
            await asyncio.sleep(0.05)
