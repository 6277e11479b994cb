"""Applying feed pages: idempotent lines, merges combined, erasure dropped, consent and restriction honoured.

The pages have the shape of customer-api's feeds; the tests against a real customer-api are in the root
tests/ (test_recommend_with_customers.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from conftest import add_baskets, build_model, customer
from fastapi import FastAPI
from sqlalchemy import func, select

from crm_kit.db import Database, upsert, utcnow
from recommend_api.builds.models import ModelVersion
from recommend_api.sync.audience import refresh_audience
from recommend_api.sync.catalogue import refresh_catalogue
from recommend_api.sync.models import CustomerState, Item, PurchaseLine
from recommend_api.sync.service import SyncResult, apply_customer_events, apply_purchases


def order(
    order_id: str, who: uuid.UUID, skus: list[str], day: int = 1, sequence: int = 1, *,
    categories: dict[str, str | None] | None = None, names: dict[str, str | None] | None = None,
) -> dict[str, Any]:  # fmt: skip
    return {
        "sequence": sequence, "order_id": order_id, "customer_id": str(who),
        "purchased_at": f"2026-10-{day:02d}T08:00:00+00:00",
        "items": [{"line_no": n, "sku": s, "name": (names or {}).get(s, f"商品{s}"),
                   "category": (categories or {}).get(s), "quantity": "1", "unit_price": "1.00", "amount": "1.00"}
                  for n, s in enumerate(skus, start=1)],
    }  # fmt: skip


def event(kind: str, who: uuid.UUID, **data: Any) -> dict[str, Any]:
    return {"sequence": 1, "customer_id": str(who), "type": kind, "occurred_at": "2026-10-01T00:00:00Z", "data": data}


async def _apply(
    app: FastAPI, *, orders: list[dict[str, Any]] | None = None, events: list[dict[str, Any]] | None = None
) -> set[uuid.UUID]:
    database: Database = app.state.database
    result = SyncResult()
    async with database.session_scope() as session:
        if events:
            await apply_customer_events(session, events, result)
        if orders:
            await apply_purchases(session, orders)
    async with database.session_scope(read_only=True) as session:
        await refresh_audience(session, app.state.audience)
    return result.erased


async def _lines(app: FastAPI, who: uuid.UUID | None = None) -> int:
    database: Database = app.state.database
    async with database.session_scope(read_only=True) as session:
        query = select(func.count()).select_from(PurchaseLine)
        if who is not None:
            query = query.where(PurchaseLine.customer_id == who)
        return int((await session.execute(query)).scalar_one())


async def test_a_page_applied_twice_stores_each_line_once(app: FastAPI, client: httpx.AsyncClient) -> None:
    page = [order("O-1", customer(1), ["A", "B"]), order("O-2", customer(2), ["A"], day=2, sequence=2)]
    await _apply(app, orders=page)
    await _apply(app, orders=page)
    assert await _lines(app) == 3


async def test_a_merge_combines_histories_and_later_lines_follow(app: FastAPI, client: httpx.AsyncClient) -> None:
    old, survivor = customer(11), customer(12)
    await _apply(app, orders=[order("O-1", old, ["A"]), order("O-2", survivor, ["B"], sequence=2)])
    await _apply(app, events=[event("merged", old, merged_into=str(survivor))])
    await build_model(client)  # the rebuild the merge queued: it may read the history before O-3 arrives
    await _apply(app, orders=[order("O-3", old, ["C"], day=3, sequence=3)])  # read from the feed after the merge
    assert await _lines(app, old) == 0 and await _lines(app, survivor) == 3
    await build_model(client)
    body = (await client.get(f"/v1/customers/{old}/recommendations")).json()
    assert body["customer_id"] == str(survivor) and body["personalised"] is True
    assert {"A", "B", "C"} <= {i["sku"] for i in body["items"] if i["reason"] == "repeat"}


async def test_an_item_keeps_its_latest_known_name_and_category(app: FastAPI, client: httpx.AsyncClient) -> None:
    buyer, other = customer(41), customer(42)
    dairy = {"MILK": "乳品", "YOGURT": "乳品", "BREAD": "早餐"}
    # In one page, out of time order: the newer line names MILK anew but gives no category (customer-api takes it
    # as optional); then an older line with another category is synced in a later page.
    await _apply(
        app,
        orders=[order("O-2", buyer, ["MILK"], day=6, sequence=2, categories={}, names={"MILK": "鲜牛奶 新装"}),
                order("O-1", buyer, ["MILK", "YOGURT", "BREAD"], day=5, categories=dairy),
                order("O-3", other, ["YOGURT", "BREAD"], day=5, sequence=3, categories=dairy)],
    )  # fmt: skip
    await _apply(app, orders=[order("O-4", other, ["MILK"], day=2, sequence=4, categories={"MILK": "饮料"})])
    database: Database = app.state.database
    async with database.session_scope(read_only=True) as session:
        milk = (await session.execute(select(Item).where(Item.sku == "MILK"))).scalar_one()
    assert (milk.name, milk.category) == ("鲜牛奶 新装", "乳品")
    await build_model(client)
    dairy_items = (await client.get("/v1/popular", params={"category": "乳品"})).json()["items"]
    assert {i["sku"] for i in dairy_items} == {"MILK", "YOGURT"}
    offers = (await client.get(f"/v1/customers/{buyer}/recovery-offers", params={"avoid_sku": "MILK"})).json()
    assert offers["items"] and not {"MILK", "YOGURT"} & {i["sku"] for i in offers["items"]}


async def test_erasure_drops_history_now_and_later(app: FastAPI, client: httpx.AsyncClient) -> None:
    gone, other = customer(21), customer(22)
    # Only the erased customer ever bought X and Y together (twice: a pair needs two baskets to count).
    await _apply(
        app,
        orders=[order("O-1", gone, ["X", "Y"]), order("O-2", gone, ["X", "Y"], day=2, sequence=2),
                order("O-3", other, ["X", "Z"], sequence=3)],
    )  # fmt: skip
    await build_model(client)
    assert "Y" in {r["consequent"] for r in (await client.get("/v1/items/X/related")).json()["items"]}
    erased = await _apply(app, events=[event("erased", gone)])
    assert erased == {gone}
    await _apply(app, orders=[order("O-4", gone, ["X", "Y"], day=4, sequence=4)])  # arrives after the erasure
    assert await _lines(app, gone) == 0
    body = (await client.get(f"/v1/customers/{gone}/recommendations")).json()
    assert body["personalised"] is False and {i["reason"] for i in body["items"]} == {"popular"}
    await build_model(client)
    assert "Y" not in {r["consequent"] for r in (await client.get("/v1/items/X/related")).json()["items"]}
    assert (await client.get("/v1/items/Y/related")).status_code == 404
    # The model built before the erasure is gone from the database too (its version's figures stay).
    async with app.state.database.session_scope(read_only=True) as session:
        kept = (await session.execute(select(ModelVersion.version, ModelVersion.blob.is_not(None)))).all()
    newest = max(version for version, _ in kept)
    assert len(kept) >= 2 and all(has_model == (version == newest) for version, has_model in kept)


@pytest.mark.parametrize(("kind", "data"), [("erased", {}), ("merged", {"merged_into": str(customer(44))})])
async def test_an_erasure_or_a_merge_queues_its_rebuild_with_the_page_that_brought_it(
    app: FastAPI, client: httpx.AsyncClient, kind: str, data: dict[str, str]
) -> None:
    """Not after the sync pass: a crash between the page and a later request would leave the old history in
    the served model for good, the event being behind the cursor."""
    await _apply(app, orders=[order("O-1", customer(43), ["A"])])
    await build_model(client)
    async with app.state.database.session_scope() as session:
        await apply_customer_events(session, [event(kind, customer(43), **data)], SyncResult())
        queued = (await session.execute(select(ModelVersion.reason).where(ModelVersion.status == "queued"))).all()
    assert queued == [("erasure" if kind == "erased" else "merge",)]


async def test_restriction_and_withdrawn_consent_leave_only_popular_items(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    restricted, withdrawn, new_without = customer(31), customer(32), customer(33)
    await _apply(
        app,
        orders=[order("O-1", restricted, ["A", "B"]), order("O-2", withdrawn, ["A", "C"], sequence=2),
                order("O-3", new_without, ["B", "C"], sequence=3)],
        events=[event("restricted", restricted), event("consent_changed", withdrawn, profiling="withdrawn"),
                event("created", new_without, type="individual", consents={"profiling": "withdrawn"})],
    )  # fmt: skip
    await build_model(client)
    for who in (restricted, withdrawn, new_without):
        for path in ("recommendations", "recovery-offers"):
            body = (await client.get(f"/v1/customers/{who}/{path}")).json()
            assert body["personalised"] is False and {i["reason"] for i in body["items"]} <= {"popular"}, body
        again = (await client.get(f"/v1/customers/{who}/recommendations", params={"kind": "repeat"})).json()
        assert again["items"] == []  # no "buy it again" row from a history that may not be used
    await _apply(
        app, events=[event("unrestricted", restricted), event("consent_changed", withdrawn, profiling="granted")]
    )
    for who in (restricted, withdrawn):
        assert (await client.get(f"/v1/customers/{who}/recommendations")).json()["personalised"] is True


async def test_rows_written_by_a_replica_whose_clock_is_behind_are_still_read(app: FastAPI) -> None:
    database: Database = app.state.database
    await _apply(app, orders=[order("O-1", customer(51), ["A"], categories={"A": "乳品"})],
                 events=[event("restricted", customer(51))])  # fmt: skip
    async with database.session_scope(read_only=True) as session:
        await refresh_catalogue(session, app.state.catalogue)
    # Another replica, its clock 20 s behind, writes after this one has read its newest rows.
    behind = utcnow() - dt.timedelta(seconds=20)
    async with database.session_scope() as session:
        await upsert(session, CustomerState.__table__, [{"customer_id": customer(52), "restricted": True,
                                                         "updated_at": behind}], key=["customer_id"])  # fmt: skip
        await upsert(session, Item.__table__, [{"sku": "B", "category": "粮油", "updated_at": behind}], key=["sku"])
    async with database.session_scope(read_only=True) as session:
        await refresh_audience(session, app.state.audience)
        await refresh_catalogue(session, app.state.catalogue)
    assert app.state.audience.resolve(customer(52)) == (customer(52), False)
    assert app.state.catalogue.category_of("B") == "粮油"


async def test_background_passes_are_counted_and_a_sync_without_customer_api_fails(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await build_model(client)  # a pass of the build worker has run to its end
    metrics = app.state.metrics.registry
    assert metrics.get_sample_value("background_job_last_success_timestamp_seconds", _job("recommend-builds"))
    # The suite's customer-api is unreachable: the scheduled sync pass at start could not read a feed.
    failed = {**_job("recommend-sync"), "outcome": "failed"}
    for _ in range(100):  # the pass at start may still be trying
        if metrics.get_sample_value("background_job_runs_total", failed):
            break
        await asyncio.sleep(0.05)
    assert metrics.get_sample_value("background_job_runs_total", failed)
    assert metrics.get_sample_value("background_job_last_success_timestamp_seconds", _job("recommend-sync")) is None
    exposed = (await client.get("/metrics")).text
    assert 'background_job_runs_total{job="recommend-sync",outcome="failed",service="recommend-api"}' in exposed


def _job(name: str) -> dict[str, str]:
    return {"job": name, "service": "recommend-api"}


async def test_sync_status_without_customer_api_reports_the_error(client: httpx.AsyncClient) -> None:
    ran = (await client.post("/v1/sync")).json()
    assert ran["orders_applied"] == 0 and ran["purchases"]["last_error"]
    status = (await client.get("/v1/sync/status")).json()
    assert status["customers"]["last_error"] and status["customers"]["caught_up_at"] is None


async def test_baskets_helper_lines_are_counted(app: FastAPI, client: httpx.AsyncClient) -> None:
    await add_baskets(app, [(1, ["A", "B"]), (2, ["C"])])
    status = (await client.get("/v1/sync/status")).json()
    assert status["lines"] == 3 and status["customers_with_history"] == 2
