"""recommend-api and customer-api as real processes: the purchase and customer feeds synced, a crash in the
middle of a sync survived with every line exactly once, erasure and merges honoured end to end."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from typing import Any

import httpx
from conftest import RunningService, client_for, purchase_feed, recommend_env, start_service, stop_service, wait_for

from crm_kit.testing import temporary_database


def _phone() -> str:
    return "137" + str(uuid.uuid4().int)[:8]


def _order(customer_id: str, skus: list[str], when: dt.datetime) -> dict[str, Any]:
    return {
        "order_id": f"R-{uuid.uuid4().hex[:16]}", "customer_id": customer_id, "purchased_at": when.isoformat(),
        "items": [{"sku": s, "name": f"商品 {s}", "category": "杂货", "quantity": "1", "unit_price": "9.90"}
                  for s in skus],
    }  # fmt: skip


def _feed_totals(customers: httpx.Client) -> tuple[int, int]:
    """Orders and lines in customer-api's purchase feed."""
    orders = purchase_feed(customers)
    return len(orders), sum(len(o["items"]) for o in orders)


def _seed_orders(customers: httpx.Client, count: int) -> tuple[int, int]:
    """`count` orders of twelve new customers; returns the orders and lines now in the purchase feed."""
    rng = random.Random(7)
    people = [customers.post("/v1/customers", json={"name": f"顾客{i}", "phone": _phone()}).json()["id"]
              for i in range(12)]  # fmt: skip
    start = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
    orders = [
        _order(rng.choice(people), rng.sample(["M1", "M2", "B1", "E1", "O1", "T1"], rng.randint(1, 4)),
               start + dt.timedelta(hours=i))
        for i in range(count)
    ]  # fmt: skip
    imported = customers.post("/v1/purchases/bulk", json={"purchases": orders})
    assert imported.status_code == 200 and imported.json()["created"] == count, imported.text
    return _feed_totals(customers)


def _build(recommendations: httpx.Client) -> int:
    version = recommendations.post("/v1/models", json={"evaluate": False}).json()["version"]

    def served() -> bool:
        current = recommendations.get("/v1/models/current")
        return current.status_code == 200 and current.json()["version"] >= version

    wait_for(served, f"model {version}")
    return int(version)


async def test_a_sync_killed_mid_way_resumes_without_losing_or_repeating_a_line(
    backend_of: dict[str, str], customer_api: RunningService, tmp_path: Any
) -> None:
    backend = backend_of["customer-api"]
    async with (
        temporary_database(backend, "crash_customer_api", tmp_path) as customers_url,
        temporary_database(backend, "crash_recommend_api", tmp_path) as url,
    ):
        # A customer-api of its own, so the feed holds exactly what this test put in it.
        source = start_service("customer-api", customers_url, tmp_path)
        try:
            await asyncio.to_thread(_kill_sync_and_resume, source, url, tmp_path)
        finally:
            stop_service(source)


def _kill_sync_and_resume(source: RunningService, url: str, tmp_path: Any) -> None:
    with client_for(source) as customers:
        total_orders, total_lines = _seed_orders(customers, 1500)
    env = recommend_env(source, RECOMMEND_API_SYNC_PAGE_SIZE="7", RECOMMEND_API_SYNC_SECONDS="0.05")
    first = start_service("recommend-api", url, tmp_path, env)
    try:
        with client_for(first) as client:

            def mid_way() -> bool:
                return bool(client.get("/v1/sync/status").json()["purchases"]["applied"] > 50)

            wait_for(mid_way, "the sync to be under way")
            assert client.get("/v1/sync/status").json()["purchases"]["caught_up_at"] is None
    finally:
        assert first.process is not None
        first.process.kill()  # SIGKILL: no shutdown, transactions cut off wherever they were
        first.process.wait()
    second = start_service("recommend-api", url, tmp_path, recommend_env(source))
    try:
        with client_for(second) as client:

            def caught_up() -> dict[str, Any] | None:
                status = client.get("/v1/sync/status").json()
                return status if status["purchases"]["applied"] >= total_orders else None

            status = wait_for(caught_up, "the sync to catch up")
            assert status["purchases"]["applied"] == total_orders
            assert status["lines"] == total_lines
    finally:
        stop_service(second)


def test_recommendations_follow_purchases_erasure_and_merges(
    customers: httpx.Client, recommendations: httpx.Client
) -> None:
    tag = uuid.uuid4().hex[:6]
    milk, bread, eggs, caviar = (f"{s}-{tag}" for s in ("MILK", "BREAD", "EGGS", "CAVIAR"))
    regular = customers.post("/v1/customers", json={"name": "常客", "phone": _phone()}).json()["id"]
    leaving = customers.post("/v1/customers", json={"name": "将删除", "phone": _phone()}).json()["id"]
    twin = customers.post("/v1/customers", json={"name": "常客(重复)", "phone": _phone()}).json()["id"]
    start = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    orders = [_order(regular, [milk, bread], start + dt.timedelta(days=d)) for d in range(4)]
    orders += [_order(leaving, [eggs, caviar], start + dt.timedelta(days=d)) for d in range(3)]
    orders += [_order(twin, [eggs], start + dt.timedelta(days=9))]
    assert customers.post("/v1/purchases/bulk", json={"purchases": orders}).json()["created"] == len(orders)
    synced = recommendations.post("/v1/sync").json()
    assert synced["purchases"]["last_error"] is None
    _build(recommendations)
    mine = recommendations.get(f"/v1/customers/{regular}/recommendations").json()
    assert mine["personalised"] is True
    repeat = {i["sku"]: i for i in mine["items"] if i["reason"] == "repeat"}
    assert repeat[milk]["times_bought"] == 4 and repeat[milk]["name"] == f"商品 {milk}"
    assert caviar in {r["consequent"] for r in recommendations.get(f"/v1/items/{eggs}/related").json()["items"]}

    # Erased in customer-api: no longer served from their history, and gone from the next model.
    assert customers.delete(f"/v1/customers/{leaving}").status_code in (200, 204)
    customers.post(f"/v1/customers/{twin}/merge", json={"target_id": regular})
    before = recommendations.get("/v1/models/current").json()["version"]
    recommendations.post("/v1/sync")
    gone = recommendations.get(f"/v1/customers/{leaving}/recommendations").json()
    assert gone["personalised"] is False and {i["reason"] for i in gone["items"]} == {"popular"}

    def rebuilt() -> bool:  # the erasure queued a rebuild by itself
        return recommendations.get("/v1/models/current").json()["version"] > before

    wait_for(rebuilt, "the rebuild after the erasure")
    assert recommendations.get(f"/v1/items/{caviar}/related").status_code == 404
    merged = recommendations.get(f"/v1/customers/{twin}/recommendations").json()
    assert merged["customer_id"] == regular
    assert eggs in {i["sku"] for i in merged["items"] if i["reason"] == "repeat"}


def test_a_merge_rebuilds_by_itself_and_a_restricted_twin_keeps_the_survivor_private(
    customers: httpx.Client, recommendations: httpx.Client
) -> None:
    tag = uuid.uuid4().hex[:6]
    tea, cake, soap = (f"{s}-{tag}" for s in ("TEA", "CAKE", "SOAP"))
    keeper, twin, private = (
        customers.post("/v1/customers", json={"name": name, "phone": _phone()}).json()["id"]
        for name in ("老顾客", "老顾客(重复)", "老顾客(另一个)")
    )
    start = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    orders = [_order(keeper, [tea], start + dt.timedelta(days=d)) for d in range(3)]
    orders += [_order(twin, [cake], start + dt.timedelta(days=d)) for d in (4, 5)]
    orders += [_order(private, [soap], start + dt.timedelta(days=d)) for d in (6, 7)]
    assert customers.post("/v1/purchases/bulk", json={"purchases": orders}).json()["created"] == len(orders)
    recommendations.post("/v1/sync")
    before = _build(recommendations)

    def repeats() -> dict[str, Any]:
        body = recommendations.get(f"/v1/customers/{keeper}/recommendations").json()
        return {i["sku"]: i for i in body["items"] if i["reason"] == "repeat"}

    assert tea in repeats() and cake not in repeats()
    assert customers.post(f"/v1/customers/{twin}/merge", json={"target_id": keeper}).status_code == 200
    recommendations.post("/v1/sync")
    # No build asked for: the merge queued one, which combines the two histories.
    newer = wait_for(
        lambda: cake in repeats() and recommendations.get("/v1/models/current").json()["version"], "a rebuild"
    )
    assert {recommendations.get(f"/v1/models/{v}").json()["reason"] for v in range(before + 1, newer + 1)} == {"merge"}
    assert repeats()[cake]["times_bought"] == 2

    # A twin who asked not to be profiled: the merged profile may not be used for personal lists any more.
    assert customers.patch(f"/v1/customers/{private}", json={"restricted": True}).status_code == 200
    assert customers.post(f"/v1/customers/{private}/merge", json={"target_id": keeper}).status_code == 200
    recommendations.post("/v1/sync")
    body = recommendations.get(f"/v1/customers/{keeper}/recommendations").json()
    assert body["personalised"] is False and {i["reason"] for i in body["items"]} == {"popular"}
