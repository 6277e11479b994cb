"""Purchases: intake, natural-key idempotency, bulk intake, history, and the gap-free purchase feed."""

from __future__ import annotations

import asyncio

import httpx
from conftest import auth
from fastapi import FastAPI
from helpers import create_customer, order


async def test_record_an_order_with_lines(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    response = await client.post("/v1/purchases", json=order(customer["id"], order_id="A-1"), headers=auth("pos"))
    assert response.status_code == 201
    body = response.json()
    assert body["total"] == "208.90" and body["currency"] == "CNY"
    assert body["purchased_at"] == "2026-10-01T01:30:00Z"
    assert [(i["sku"], i["quantity"], i["amount"]) for i in body["items"]] == [
        ("6901234567890", "1", "89.90"),
        ("6909876543210", "2", "119.00"),
    ]
    assert response.headers["location"] == "/v1/purchases/A-1"
    assert (await client.get("/v1/purchases/A-1")).json() == body


async def test_an_order_id_with_slashes_and_marks_is_found_at_its_location(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    order_id = "POS/2026/11#0001?a b"
    response = await client.post("/v1/purchases", json=order(customer["id"], order_id=order_id), headers=auth("pos"))
    assert response.status_code == 201, response.text
    location = response.headers["location"]
    assert location == "/v1/purchases/POS%2F2026%2F11%230001%3Fa%20b"
    assert (await client.get(location)).json() == response.json()
    assert (await client.get("/v1/purchases/POS/2026/11%230001%3Fa%20b")).json()["order_id"] == order_id


async def test_same_order_again_is_the_stored_one_and_another_body_conflicts(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    first = await client.post("/v1/purchases", json=order(customer["id"], order_id="A-2"))
    again = await client.post("/v1/purchases", json=order(customer["id"], order_id="A-2"))
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == first.json()
    changed = order(customer["id"], order_id="A-2")
    changed["items"][0]["quantity"] = "3"
    conflict = await client.post("/v1/purchases", json=changed)
    assert conflict.status_code == 409 and conflict.json()["field"] == "order_id"
    feed = (await client.get("/v1/feeds/purchases")).json()["items"]
    assert [p["order_id"] for p in feed] == ["A-2"]


async def test_an_order_sent_again_after_a_merge_is_the_stored_one_under_either_id(client: httpx.AsyncClient) -> None:
    """The stored order belongs to the survivor now: sent again naming either profile, it is the same order
    (single and bulk); other content, or a third customer, is still a conflict."""
    kept, absorbed = await create_customer(client, name="留下"), await create_customer(client, name="并入")
    other = await create_customer(client, name="别人")
    for order_id, sent_by in (("MG-1", absorbed), ("MG-2", kept)):
        assert (await client.post("/v1/purchases", json=order(sent_by["id"], order_id=order_id))).status_code == 201
    assert (
        await client.post(f"/v1/customers/{absorbed['id']}/merge", json={"target_id": kept["id"]})
    ).status_code == 200
    for order_id in ("MG-1", "MG-2"):
        for who in (kept, absorbed):
            again = await client.post("/v1/purchases", json=order(who["id"], order_id=order_id))
            assert again.status_code == 200 and again.json()["customer_id"] == kept["id"], (order_id, again.text)
        assert (await client.post("/v1/purchases", json=order(other["id"], order_id=order_id))).status_code == 409
    bulk = await client.post(
        "/v1/purchases/bulk",
        json={"purchases": [order(kept["id"], order_id="MG-1"), order(other["id"], order_id="MG-2")]},
    )
    assert [r["status"] for r in bulk.json()["results"]] == ["existing", "conflict"]
    assert len((await client.get(f"/v1/customers/{kept['id']}/purchases")).json()["items"]) == 2


async def test_concurrent_retries_of_one_order_store_it_once(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    body = order(customer["id"], order_id="A-3")
    responses = await asyncio.gather(*(client.post("/v1/purchases", json=body) for _ in range(10)))
    assert sorted(r.status_code for r in responses) == [200] * 9 + [201]
    history = (await client.get(f"/v1/customers/{customer['id']}/purchases")).json()["items"]
    assert len(history) == 1


async def test_orders_for_unknown_or_erased_customers_are_rejected(client: httpx.AsyncClient) -> None:
    unknown = await client.post("/v1/purchases", json=order("01234567-89ab-7def-8123-456789abcdef"))
    assert unknown.status_code == 422 and unknown.json()["field"] == "customer_id"
    customer = await create_customer(client)
    await client.delete(f"/v1/customers/{customer['id']}")
    erased = await client.post("/v1/purchases", json=order(customer["id"]))
    assert erased.status_code == 422


async def test_order_validation(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    cases = {
        "negative price": {"items": [{"sku": "x", "quantity": "1", "unit_price": "-1"}]},
        "zero quantity": {"items": [{"sku": "x", "quantity": "0", "unit_price": "1"}]},
        "too many decimals": {"items": [{"sku": "x", "quantity": "1", "unit_price": "1.001"}]},
        "exponent": {"items": [{"sku": "x", "quantity": "1e3", "unit_price": "1"}]},  # the documented pattern
        "digit separator": {"items": [{"sku": "x", "quantity": "1", "unit_price": "1_000"}]},
        "no items": {"items": []},
        "naive time": {"purchased_at": "2026-10-01T10:00:00"},
        "future": {"purchased_at": "2099-01-01T00:00:00Z"},
        "bad currency": {"currency": "rmb"},
        "bad channel": {"channel": "fax"},
    }
    for name, patch in cases.items():
        response = await client.post("/v1/purchases", json={**order(customer["id"]), **patch})
        assert response.status_code == 422, name
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["errors"], name


async def test_bulk_import_reports_each_order_and_keeps_the_good_ones(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    other = await create_customer(client)
    await client.post("/v1/purchases", json=order(customer["id"], order_id="B-0"))
    changed_existing = order(customer["id"], order_id="B-0")
    changed_existing["store_id"] = "elsewhere"
    rows = [
        order(customer["id"], order_id="B-1"),
        {"order_id": "B-2", "customer_id": customer["id"]},  # invalid: no items, no time
        order(other["id"], order_id="B-3"),
        order(customer["id"], order_id="B-0"),  # already stored, same content
        changed_existing,  # already stored, other content
        order("01234567-89ab-7def-8123-456789abcdef", order_id="B-4"),  # unknown customer
        order(customer["id"], order_id="B-1"),  # repeated inside the batch
        "not an object",
    ]
    response = await client.post("/v1/purchases/bulk", json={"purchases": rows}, headers=auth("pos"))
    assert response.status_code == 200, response.text
    result = response.json()
    statuses = [(r["index"], r["order_id"], r["status"]) for r in result["results"]]
    assert statuses == [
        (0, "B-1", "created"),
        (1, "B-2", "invalid"),
        (2, "B-3", "created"),
        (3, "B-0", "existing"),
        (4, "B-0", "conflict"),
        (5, "B-4", "invalid"),
        (6, "B-1", "existing"),
        (7, None, "invalid"),
    ]
    assert (result["created"], result["existing"], result["rejected"]) == (2, 2, 4)
    retry = (await client.post("/v1/purchases/bulk", json={"purchases": rows})).json()
    assert (retry["created"], retry["existing"], retry["rejected"]) == (0, 4, 4)
    feed = (await client.get("/v1/feeds/purchases")).json()["items"]
    assert sorted(p["order_id"] for p in feed) == ["B-0", "B-1", "B-3"]


async def test_bulk_import_takes_five_thousand_orders(client: httpx.AsyncClient) -> None:
    customers = [await create_customer(client) for _ in range(10)]
    rows = [
        order(customers[i % 10]["id"], order_id=f"BIG-{i:05d}", purchased_at=f"2026-0{1 + i % 9}-1{i % 10}T08:00:00Z")
        for i in range(5000)
    ]
    response = await client.post("/v1/purchases/bulk", json={"purchases": rows})
    assert response.status_code == 200
    assert response.json()["created"] == 5000
    retried = (await client.post("/v1/purchases/bulk", json={"purchases": rows})).json()
    assert retried["created"] == 0 and retried["existing"] == 5000
    history = await client.get(f"/v1/customers/{customers[3]['id']}/purchases", params={"limit": 500})
    assert len(history.json()["items"]) == 500


async def test_bulk_limit_is_enforced(client: httpx.AsyncClient, app: object) -> None:
    limit = app.state.settings.bulk_max_orders  # type: ignore[attr-defined]
    too_many = {"purchases": [{}] * (limit + 1)}
    response = await client.post("/v1/purchases/bulk", json=too_many)
    assert response.status_code == 422 and response.json()["field"] == "purchases"


async def test_customer_history_filters_by_time_and_pages(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    for day in range(1, 8):
        await client.post(
            "/v1/purchases",
            json=order(customer["id"], order_id=f"H-{day}", purchased_at=f"2026-09-0{day}T12:00:00Z"),
        )
    url = f"/v1/customers/{customer['id']}/purchases"
    window = await client.get(url, params={"since": "2026-09-03T00:00:00Z", "until": "2026-09-06T00:00:00Z"})
    backwards = {"since": "2026-09-06T00:00:00Z", "until": "2026-09-03T00:00:00Z"}
    for bound in ({"since": "0001-01-01T00:00:00+00:01"}, {"until": "9999-12-31T23:59:59-23:59"}, {"since": "0"},
                  backwards):  # fmt: skip
        refused = await client.get(url, params=bound)
        assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
    assert [p["order_id"] for p in window.json()["items"]] == ["H-5", "H-4", "H-3"]
    seen, cursor = [], None
    while True:
        page = (await client.get(url, params={"limit": 3, **({"cursor": cursor} if cursor else {})})).json()
        seen += [p["order_id"] for p in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == [f"H-{d}" for d in range(7, 0, -1)]


async def test_purchase_feed_is_gap_free_while_orders_are_written_concurrently(client: httpx.AsyncClient) -> None:
    customers = [await create_customer(client) for _ in range(4)]
    written: list[str] = []
    done = asyncio.Event()

    async def single_writer(w: int) -> None:
        for i in range(25):
            order_id = f"F-{w}-{i}"
            response = await client.post("/v1/purchases", json=order(customers[w]["id"], order_id=order_id))
            assert response.status_code == 201
            written.append(order_id)

    async def bulk_writer() -> None:
        for batch in range(5):
            rows = [order(customers[0]["id"], order_id=f"FB-{batch}-{i}") for i in range(40)]
            response = await client.post("/v1/purchases/bulk", json={"purchases": rows})
            assert response.json()["created"] == 40
            written.extend(r["order_id"] for r in rows)

    seen: list[tuple[int, str]] = []

    async def reader() -> None:
        cursor = None
        while True:
            finished = done.is_set()
            params = {"limit": 37, **({"after": cursor} if cursor else {})}
            page = (await client.get("/v1/feeds/purchases", params=params, headers=auth("feeds"))).json()
            seen.extend((p["sequence"], p["order_id"]) for p in page["items"])
            cursor = page["next_cursor"]
            if finished and not page["has_more"]:
                return
            await asyncio.sleep(0)

    async def writers() -> None:
        await asyncio.gather(*(single_writer(w) for w in range(4)), bulk_writer())
        done.set()

    await asyncio.gather(writers(), reader())
    sequences = [s for s, _ in seen]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)
    order_ids = [o for _, o in seen]
    assert len(order_ids) == len(set(order_ids)) == len(written) == 300
    assert set(order_ids) == set(written)


async def test_feed_items_carry_lines_and_need_the_feed_scope(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    await client.post("/v1/purchases", json=order(customer["id"], order_id="S-1"))
    item = (await client.get("/v1/feeds/purchases", headers=auth("feeds"))).json()["items"][0]
    assert item["order_id"] == "S-1" and len(item["items"]) == 2 and item["sequence"] >= 1
    assert (await client.get("/v1/feeds/purchases", headers=auth("reader"))).status_code == 403


async def test_a_feed_cursor_is_taken_by_its_own_feed_only(client: httpx.AsyncClient, app: FastAPI) -> None:
    customer = await create_customer(client)
    assert (await client.post("/v1/purchases", json=order(customer["id"]))).status_code == 201
    first = (await client.get("/v1/feeds/purchases")).json()
    wrong = await client.get("/v1/feeds/customers", params={"after": first["next_cursor"]})
    assert wrong.status_code == 400 and wrong.json()["field"] == "after", wrong.text
    assert "/v1/feeds/purchases" in wrong.json()["detail"]
    own = await client.get("/v1/feeds/purchases", params={"after": first["next_cursor"]})
    assert own.status_code == 200 and own.json()["items"] == []
    # A cursor issued before cursors named their feed (a bare position), as a follower may have stored it.
    stored = app.state.cursor_codec.encode(0)
    again = (await client.get("/v1/feeds/purchases", params={"after": stored})).json()
    assert [i["order_id"] for i in again["items"]] == [i["order_id"] for i in first["items"]]
