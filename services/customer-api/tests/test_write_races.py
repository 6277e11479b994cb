"""Writes that add rows under a profile while it is merged or erased (PostgreSQL: SQLite writes one at a time).

Each test holds the profile's row in a transaction of its own, sends the merge or the erasure, which queues behind
it, then the writes, which queue too; once every one of them waits, the row is let go. An order or a contact note
sent while the profile was being merged must land on the survivor, and a note sent while its author was being
erased must not keep their words.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import httpx
import pytest
from helpers import create_customer, order
from sqlalchemy.engine import make_url

WAITING = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"


@pytest.fixture
async def dsn(database_url: str, backend: str) -> AsyncIterator[str]:
    if backend != "postgresql":
        pytest.skip("SQLite runs one write transaction at a time: there is no race to lose")
    yield make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _queued_behind_the_row(
    dsn: str, customer_id: str, requests: list[Callable[[], Awaitable[httpx.Response]]]
) -> list[httpx.Response]:
    """Send each request once the ones before it wait for the profile's row, then let the row go."""
    holder, watcher = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    sent: list[asyncio.Task[httpx.Response]] = []
    try:
        async with holder.transaction():
            await holder.execute("SELECT 1 FROM customers WHERE id = $1 FOR UPDATE", uuid.UUID(customer_id))
            for waiting, request in enumerate(requests, start=1):
                sent.append(asyncio.ensure_future(request()))
                for _ in range(1000):
                    if await watcher.fetchval(WAITING) >= waiting:
                        break
                    await asyncio.sleep(0.02)
                else:
                    pytest.fail(f"request {waiting} never queued behind the profile's row")
        return await asyncio.gather(*sent)
    finally:
        await holder.close()
        await watcher.close()


async def test_an_order_and_a_note_sent_during_a_merge_land_on_the_survivor(
    client: httpx.AsyncClient, dsn: str
) -> None:
    duplicate = await create_customer(client, name="何静(重复)")
    target = await create_customer(client, name="何静")
    merged, imported, bought, noted = await _queued_behind_the_row(
        dsn,
        duplicate["id"],
        [
            lambda: client.post(f"/v1/customers/{duplicate['id']}/merge", json={"target_id": target["id"]}),
            lambda: client.post(
                "/v1/purchases/bulk", json={"purchases": [order(duplicate["id"], order_id="RACE-M-2")]}
            ),
            lambda: client.post("/v1/purchases", json=order(duplicate["id"], order_id="RACE-M-1")),
            lambda: client.post(f"/v1/customers/{duplicate['id']}/interactions", json={"kind": "note", "note": "x"}),
        ],
    )
    assert merged.status_code == 200, merged.text
    assert bought.status_code == 201 and bought.json()["customer_id"] == target["id"], bought.text
    assert noted.status_code == 201 and noted.json()["customer_id"] == target["id"], noted.text
    history = (await client.get(f"/v1/customers/{target['id']}/purchases")).json()["items"]
    assert imported.status_code == 200 and imported.json()["created"] == 1, imported.text
    assert sorted(p["order_id"] for p in history) == ["RACE-M-1", "RACE-M-2"]
    assert [i["note"] for i in (await client.get(f"/v1/customers/{target['id']}/interactions")).json()["items"]] == [
        "x"
    ]


async def test_a_note_sent_during_an_erasure_keeps_nothing_of_the_person(client: httpx.AsyncClient, dsn: str) -> None:
    leaving = await create_customer(client, name="孙丽")
    note = {"kind": "call", "note": "孙丽说住在梧桐路 8 号", "subject": "孙丽来电"}
    erased, noted = await _queued_behind_the_row(
        dsn,
        leaving["id"],
        [
            lambda: client.delete(f"/v1/customers/{leaving['id']}"),
            lambda: client.post(f"/v1/customers/{leaving['id']}/interactions", json=note),
        ],
    )
    assert erased.status_code == 204, erased.text
    assert noted.status_code == 410, noted.text
    connection = await asyncpg.connect(dsn)
    try:
        kept = await connection.fetch(
            "SELECT subject, note FROM interactions WHERE customer_id = $1", uuid.UUID(leaving["id"])
        )
    finally:
        await connection.close()
    assert [(row["subject"], row["note"]) for row in kept] == []
