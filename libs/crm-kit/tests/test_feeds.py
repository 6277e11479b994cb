"""Following a peer's feed with `follow_feed`, on real SQLite and PostgreSQL, against a stand-in peer that
serves a feed of ten entries in pages: each page applied once with its cursor, and a replica overtaken by
another one says that entries are still waiting."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Column, Integer, Table, func, select

from crm_kit.db import Database, insert_ignore, new_metadata
from crm_kit.feeds import Followed, feed_position, follow_feed, follower_metadata
from crm_kit.http import PeerClient, PeerConfig
from crm_kit.testing import BACKENDS, temporary_database

ENTRIES = 10
applied_entries = Table("applied_entries", new_metadata(), Column("sequence", Integer, primary_key=True))


def peer_serving(before_answering: Callable[[], Awaitable[None]] | None = None) -> PeerClient:
    """customer-api's feed shape: `after` a cursor, `limit` entries, `next_cursor` and `has_more`."""
    calls = 0

    async def feed(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1 and before_answering is not None:
            await before_answering()
        after = int(request.url.params.get("after", 0))
        upto = min(ENTRIES, after + int(request.url.params["limit"]))
        items = [{"sequence": n} for n in range(after + 1, upto + 1)]
        return httpx.Response(200, json={"items": items, "next_cursor": str(upto), "has_more": upto < ENTRIES})

    config = PeerConfig(base_url="http://customer-api.test", retries=0)
    return PeerClient("customer-api", config, transport=httpx.MockTransport(feed))


async def apply(session: Any, items: list[dict[str, Any]]) -> None:
    await insert_ignore(session, applied_entries, [{"sequence": i["sequence"]} for i in items])


@pytest.fixture(params=BACKENDS)
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with temporary_database(request.param, "crm_kit_feeds", tmp_path) as url:
        database = Database(url)
        async with database.engine.begin() as conn:
            await conn.run_sync(follower_metadata.create_all)
            await conn.run_sync(applied_entries.metadata.create_all)
        yield database
        await database.dispose()


async def follow(database: Database, peer: PeerClient) -> Followed | None:
    return await follow_feed(database, peer, feed="peer:entries", path="/v1/feeds/entries", apply=apply, limit=4)


async def applied(database: Database) -> int:
    async with database.session_scope(read_only=True) as session:
        return int((await session.execute(select(func.count()).select_from(applied_entries))).scalar_one())


async def test_pages_are_applied_in_turn_and_the_last_says_nothing_is_waiting(database: Database) -> None:
    peer = peer_serving()
    assert [await follow(database, peer) for _ in range(4)] == [
        Followed(4, more=True), Followed(4, more=True), Followed(2, more=False), Followed(0, more=False)
    ]  # fmt: skip
    assert await applied(database) == ENTRIES
    async with database.session_scope(read_only=True) as session:
        position = await feed_position(session, "peer:entries")
    assert position.cursor == str(ENTRIES) and position.applied == ENTRIES and position.caught_up_at is not None


async def test_a_replica_overtaken_by_another_applies_nothing_and_says_entries_are_waiting(
    database: Database,
) -> None:
    other_replica = peer_serving()

    async def the_other_replica_applies_the_page_first() -> None:
        assert await follow(database, other_replica) == Followed(4, more=True)

    overtaken = await follow(database, peer_serving(before_answering=the_other_replica_applies_the_page_first))
    assert overtaken == Followed(0, more=True)
    assert await applied(database) == 4  # the page once, by the replica that moved the cursor
