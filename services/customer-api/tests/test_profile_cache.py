"""The profile cache: the same answers as the database, every change seen, keys and scopes still checked."""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from conftest import auth
from fastapi import FastAPI
from helpers import create_customer
from sqlalchemy.engine import make_url

from customer_api.customers.cache import LISTENER, ProfileCache, ProfileReads


def _hits(app: FastAPI) -> float:
    return app.state.metrics.registry.get_sample_value("profile_cache_hits_total") or 0.0


def _comparable(response: httpx.Response) -> tuple[int, dict[str, str], bytes]:
    headers = {k: v for k, v in response.headers.items() if k != "x-request-id"}
    return response.status_code, headers, response.content


@pytest.fixture
async def database(database_url: str, backend: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of its own to the service's PostgreSQL database: another writer, as a replica or a CLI."""
    if backend != "postgresql":
        pytest.skip("the profile cache needs PostgreSQL's notifications")
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    yield connection
    await connection.close()


async def _eventually(check: Callable[[], Any], what: str, seconds: float = 10) -> None:
    """Wait until `check()` (a value or an awaitable) is true."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not ((await result) if inspect.isawaitable(result := check()) else result):
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.02)


async def test_a_cached_read_is_the_same_answer_as_a_database_read(
    client: httpx.AsyncClient, app: FastAPI, backend: str
) -> None:
    created = await create_customer(client, email="li.na@example.com", birthday="1992-07-01", tags=["会员"])
    url = f"/v1/customers/{created['id']}"
    first = {name: await client.get(url, headers=auth(name)) for name in ("reader", "pii-reader")}
    before = _hits(app)
    again = {name: await client.get(url, headers=auth(name)) for name in ("reader", "pii-reader")}
    for name in first:
        assert _comparable(again[name]) == _comparable(first[name])
        assert again[name].headers["x-request-id"] != first[name].headers["x-request-id"]
    assert first["reader"].json()["pii_masked"] is True and first["pii-reader"].json()["pii_masked"] is False
    # On PostgreSQL the second reads came from memory; SQLite has no notifications, so no cache.
    assert _hits(app) - before == (2 if backend == "postgresql" else 0)
    assert app.state.profile_cache.live is (backend == "postgresql")
    # A query string or another spelling of the id go through the application, with the same answer.
    other_spelling = f"/v1/customers/{created['id'].upper()}"
    assert (await client.get(url, params={"x": "1"})).json() == (await client.get(other_spelling)).json()
    assert _hits(app) - before == (2 if backend == "postgresql" else 0)


async def test_keys_and_scopes_apply_to_cached_profiles(client: httpx.AsyncClient, app: FastAPI) -> None:
    created = await create_customer(client)
    url = f"/v1/customers/{created['id']}"
    assert (await client.get(url)).status_code == 200  # cached now (on PostgreSQL)
    for headers, status in (
        ({"Authorization": ""}, 401),
        ({"Authorization": "Bearer not-a-key"}, 401),
        ({"Authorization": "Basic dev-admin-key"}, 401),
        (auth("pos"), 403),
    ):
        refused = await client.get(url, headers=headers)
        assert refused.status_code == status and refused.headers["content-type"] == "application/problem+json"
    phone = created["phone"]
    assert (await client.get(url, headers=auth("reader"))).json()["phone"] == f"{phone[:6]}****{phone[-4:]}"


async def test_writes_through_the_service_are_read_back_at_once(client: httpx.AsyncClient, app: FastAPI) -> None:
    customer = await create_customer(client)
    duplicate = await create_customer(client, name="张伟（重复）")
    url = f"/v1/customers/{customer['id']}"
    for i in range(30):
        read = await client.get(url)
        changed = await client.patch(url, json={"name": f"王芳{i}"}, headers={"If-Match": read.headers["etag"]})
        assert changed.status_code == 200
        assert (await client.get(url)).json() == changed.json()
    restricted = await client.patch(url, json={"restricted": True})
    assert (await client.get(url)).json()["restricted"] is True == restricted.json()["restricted"]
    assert (await client.get(f"/v1/customers/{duplicate['id']}")).status_code == 200
    await client.post(f"/v1/customers/{duplicate['id']}/merge", json={"target_id": customer["id"]})
    assert (await client.get(f"/v1/customers/{duplicate['id']}")).status_code == 308
    assert (await client.delete(url)).status_code == 204
    assert (await client.get(url)).status_code == 410


async def test_a_change_by_another_writer_is_seen_within_moments(
    client: httpx.AsyncClient, app: FastAPI, database: asyncpg.Connection
) -> None:
    customer = await create_customer(client, name="刘洋")
    url = f"/v1/customers/{customer['id']}"
    await client.get(url)
    assert customer["id"] in app.state.profile_cache
    await database.execute(
        "UPDATE customers SET name = '刘洋洋', version = version + 1 WHERE id = $1", uuid.UUID(customer["id"])
    )

    async def renamed() -> bool:
        return (await client.get(url)).json()["name"] == "刘洋洋"

    await _eventually(renamed, "another writer's change reached the cache")
    # A notice for everything (a statement that changed many rows) empties it.
    await client.get(url)
    assert len(app.state.profile_cache) > 0
    await database.execute("SELECT pg_notify('customer_changed', '*')")
    await _eventually(lambda: len(app.state.profile_cache) == 0, "the cache was emptied")


async def test_the_cache_is_off_while_its_listener_is_away(
    client: httpx.AsyncClient, app: FastAPI, database: asyncpg.Connection
) -> None:
    cache: ProfileCache = app.state.profile_cache
    customer = await create_customer(client, name="孙丽")
    url = f"/v1/customers/{customer['id']}"
    await client.get(url)
    epoch = cache.epoch
    cut = await database.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = $1",
        LISTENER,
    )
    assert cut == 1
    # The listener notices, everything cached is forgotten and reads go to the database.
    await _eventually(lambda: cache.epoch > epoch, "the listener noticed the cut")
    await database.execute("UPDATE customers SET name = '孙丽丽' WHERE id = $1", uuid.UUID(customer["id"]))
    assert (await client.get(url)).json()["name"] == "孙丽丽"
    # It comes back by itself and serves again.
    await _eventually(lambda: cache.live, "the listener reconnected")
    await client.get(url)
    before = _hits(app)
    assert (await client.get(url)).json()["name"] == "孙丽丽"
    assert _hits(app) == before + 1


def _rendering(name: str) -> Callable[[bool], tuple[list[tuple[bytes, bytes]], bytes]]:
    return lambda show_pii: ([], f"{name}:{show_pii}".encode())


def test_a_read_that_raced_a_change_is_not_kept() -> None:
    cache = ProfileCache(capacity=2)
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    cache.store(first, cache.epoch, _rendering("old"))
    assert str(first) not in cache  # not live: nothing is kept
    cache.set_live(True)
    started = cache.epoch
    cache.forget(str(second))  # a change lands while the read of `first` is under way
    cache.store(first, started, _rendering("old"))
    assert str(first) not in cache
    cache.store(first, cache.epoch, _rendering("new"))
    assert cache.entry(str(first)) == (([], b"new:False"), ([], b"new:True"))
    cache.store(second, cache.epoch, _rendering("b"))
    cache.store(third, cache.epoch, _rendering("c"))  # over capacity: the oldest goes
    assert str(first) not in cache and str(second) in cache and str(third) in cache
    cache.set_live(False)
    assert len(cache) == 0


async def test_a_write_forgets_what_it_changed_before_its_answer_leaves() -> None:
    cache = ProfileCache(capacity=10)
    cache.set_live(True)
    ids = [uuid.uuid4() for _ in range(3)]
    for customer_id in ids:
        cache.store(customer_id, cache.epoch, _rendering("x"))

    async def writer(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    layer = ProfileReads(writer, cache=cache, scope="customers:read", pii_scope="customers:pii")
    cached_when_answered: list[tuple[bool, int]] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            cached_when_answered.append((str(ids[0]) in cache, len(cache)))

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    for method, path in (
        ("PATCH", f"/v1/customers/{ids[0]}"),  # that profile only
        ("POST", "/v1/customers"),  # a new profile: nothing cached changes
        ("POST", f"/v1/customers/{ids[1]}/merge"),  # two profiles: everything
    ):
        await layer({"type": "http", "method": method, "path": path, "headers": []}, receive, send)
    assert cached_when_answered == [(False, 2), (False, 2), (False, 0)]


async def test_a_write_to_the_id_in_another_spelling_forgets_that_profile() -> None:
    """The route takes an id upper case or without hyphens; a PATCH or an erasure so addressed still forgets the
    profile before its answer leaves, or the writer's next read (or the next after an erasure) is the old one."""
    cache = ProfileCache(capacity=10)
    cache.set_live(True)
    ids = [uuid.uuid4() for _ in range(3)]

    async def writer(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    layer = ProfileReads(writer, cache=cache, scope="customers:read", pii_scope="customers:pii")
    for method, spelling in (("PATCH", str(ids[0]).upper()), ("DELETE", ids[1].hex)):
        for customer_id in ids:
            cache.store(customer_id, cache.epoch, _rendering("x"))
        await layer(
            {"type": "http", "method": method, "path": f"/v1/customers/{spelling}", "headers": []}, receive, send
        )
        changed = ids[0] if method == "PATCH" else ids[1]
        assert str(changed) not in cache and len(cache) == 2, method
