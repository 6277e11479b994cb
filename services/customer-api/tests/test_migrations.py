"""The money columns: wide enough for every order the API takes, and widened without losing a stored order."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from logging.handlers import BufferingHandler
from pathlib import Path

import httpx
from alembic import command
from asgi_lifespan import LifespanManager
from helpers import create_customer, order
from sqlalchemy import insert

from crm_kit.db import make_engine
from crm_kit.health import alembic_config, upgrade_database
from crm_kit.testing import DEV_KEY, schema_drift, temporary_database
from customer_api.config import Settings
from customer_api.customers.models import Customer
from customer_api.db import all_metadata
from customer_api.main import ALEMBIC_INI, create_app

BEFORE_WIDER_MONEY = "5b1e0c7d9a21"
BEFORE_UPPER_CASE_CARDS = "e8b3d5f1a2c6"
# The largest line the API takes, and three orders that each fit in NUMERIC(14, 2) but add up past it.
LARGEST_LINE = {"sku": "GOLD-BAR", "quantity": "1000000", "unit_price": "100000000"}
NEAR_LIMIT = {"sku": "GOLD-BAR", "quantity": "9999", "unit_price": "99999999.99"}


async def test_an_order_at_the_largest_amounts_is_stored_and_its_customer_valued(client: httpx.AsyncClient) -> None:
    customer = (await create_customer(client))["id"]
    largest = await client.post("/v1/purchases", json=order(customer, items=[LARGEST_LINE] * 2))
    assert largest.status_code == 201, largest.text
    assert largest.json()["total"] == "200000000000000.00"
    days = [f"2026-10-0{day}T09:30:00+08:00" for day in (2, 3, 4)]
    bulk = [order(customer, purchased_at=day, items=[NEAR_LIMIT]) for day in days] + [
        order(customer, items=[LARGEST_LINE])
    ]
    imported = await client.post("/v1/purchases/bulk", json={"purchases": bulk})  # PostgreSQL: COPY, not INSERT
    assert imported.json()["created"] == 4, imported.text
    refresh = await client.post("/v1/analytics/refresh", json={})
    job = refresh.json()
    while job["status"] in ("queued", "running"):
        await asyncio.sleep(0.05)
        job = (await client.get(refresh.headers["location"])).json()
    assert job["status"] == "succeeded", job["error"]
    value = (await client.get(f"/v1/customers/{customer}/value")).json()
    # 3 × 10^14 + 3 × 999,899,999,900.01, summed in float64: its 16 significant digits drop the cents at this size.
    assert abs(Decimal(value["established_value"]) - Decimal("302999699999700.03")) < 1


@asynccontextmanager
async def _client_of(url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """customer-api on the database at `url`, with its lifespan running, and a client of it with the dev key."""
    app = create_app(Settings(environment="test", database_url=url, data_dir=tmp_path, access_log=False))
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {DEV_KEY}"}
    async with LifespanManager(app), httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as c:
        yield c


async def test_widening_the_money_columns_keeps_every_stored_order(backend: str, tmp_path: Path) -> None:
    async with temporary_database(backend, "customer_api_migration", tmp_path) as url:
        await asyncio.to_thread(upgrade_database, ALEMBIC_INI, url)
        async with _client_of(url, tmp_path) as client:
            customer = (await create_customer(client))["id"]
            lines = [{"sku": f"SKU-{i}", "quantity": "2.5", "unit_price": "19.99"} for i in range(3)]
            stored = [(await client.post("/v1/purchases", json=order(customer, items=lines))).json() for _ in range(2)]
        config = alembic_config(ALEMBIC_INI, url)
        await asyncio.to_thread(command.downgrade, config, BEFORE_WIDER_MONEY)
        await asyncio.to_thread(command.upgrade, config, "head")
        async with _client_of(url, tmp_path) as client:
            after = (await client.get(f"/v1/customers/{customer}/purchases")).json()["items"]
        assert sorted(after, key=lambda p: p["order_id"]) == stored
        assert await schema_drift(url, all_metadata) == []


async def test_upper_casing_the_card_numbers_keeps_colliding_ones_and_reports_them(
    backend: str, tmp_path: Path
) -> None:
    # name → card number as an older version stored it, and the day the profile was created
    stored = {
        "单卡": ("vip-0001", 1),
        "先来小写": ("vip-0002", 1),
        "后来混写": ("Vip-0002", 2),
        "先来小写乙": ("imp0003", 1),
        "后来大写": ("IMP0003", 2),
    }
    ids = {name: uuid.uuid4() for name in stored}
    async with temporary_database(backend, "customer_api_migration", tmp_path) as url:
        await asyncio.to_thread(upgrade_database, ALEMBIC_INI, url, BEFORE_UPPER_CASE_CARDS)
        engine = make_engine(url)
        async with engine.begin() as connection:
            rows = [
                {"id": ids[name], "type": "individual", "name": name, "card_number": card,
                 "created_at": dt.datetime(2026, 11, day, tzinfo=dt.UTC)}
                for name, (card, day) in stored.items()
            ]  # fmt: skip
            await connection.execute(insert(Customer), rows)
        await engine.dispose()
        reported = BufferingHandler(capacity=100)
        logging.getLogger("customer_api.migrations").addHandler(reported)
        try:
            await asyncio.to_thread(upgrade_database, ALEMBIC_INI, url)
        finally:
            logging.getLogger("customer_api.migrations").removeHandler(reported)
        async with _client_of(url, tmp_path) as client:
            profiles = {name: (await client.get(f"/v1/customers/{ids[name]}")).json() for name in stored}
            assert {name: (p["card_number"], p["version"]) for name, p in profiles.items()} == {
                "单卡": ("VIP-0001", 2),
                "先来小写": ("VIP-0002", 2),
                "后来混写": ("Vip-0002", 1),
                "先来小写乙": ("imp0003", 1),
                "后来大写": ("IMP0003", 1),
            }
            taken = await client.post("/v1/customers", json={"name": "新卡", "card_number": "vip-0002"})
            assert taken.status_code == 409 and taken.json()["existing_customer_id"] == str(ids["先来小写"])
            found = (await client.get("/v1/customers", params={"q": "imp0003"})).json()["items"]
            assert [c["id"] for c in found] == [str(ids["后来大写"])]
        # Each profile left as stored is a warning that names it and the profile holding its card.
        left_and_holder = [(ids["后来混写"], ids["先来小写"]), (ids["先来小写乙"], ids["后来大写"])]
        assert sorted((r.levelno, r.args) for r in reported.buffer) == sorted(
            (logging.WARNING, pair) for pair in left_and_holder
        )
        config = alembic_config(ALEMBIC_INI, url)
        await asyncio.to_thread(command.downgrade, config, BEFORE_UPPER_CASE_CARDS)
        await asyncio.to_thread(command.upgrade, config, "head")
        assert await schema_drift(url, all_metadata) == []
