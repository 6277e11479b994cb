"""Ordered change feeds that peers read with a cursor, without gaps while writes are concurrent.

A feed row's sequence number is taken from an auto-incrementing key. Two transactions could
otherwise commit out of sequence order and a reader between the two commits would skip the later
number for good; so writers to one feed are serialised until commit: on PostgreSQL by a
transaction-scoped advisory lock, on SQLite by its single writer lock (`BEGIN IMMEDIATE`).

The other side: `follow_feed` reads a peer's feed a page at a time and applies each page in the same
transaction as the stored cursor.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Column, String, Table, Text, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_kit.db import Database, UTCDateTime, insert_ignore, new_metadata, transaction_lock, utcnow
from crm_kit.http import PeerClient, PeerUnavailable


async def lock_feed(session: AsyncSession, name: str) -> None:
    """Hold the feed's writer lock until this transaction ends. Call before inserting feed rows."""
    await transaction_lock(session, name)


# --- Following a peer's feed -------------------------------------------------------------------------

follower_metadata = new_metadata()

# Where each followed feed was read up to; a service that follows feeds adds this metadata to its migrations.
feed_cursors = Table(
    "feed_cursors",
    follower_metadata,
    Column("feed", String(64), primary_key=True),
    Column("cursor", String(512), nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("caught_up_at", UTCDateTime, nullable=True),
    Column("applied", BigInteger, nullable=False, server_default="0"),
)

ApplyPage = Callable[[AsyncSession, list[dict[str, Any]]], Awaitable[None]]


@dataclass(frozen=True)
class FeedPosition:
    """What a follower knows about one feed: its cursor, when it last read to the end, the last error."""

    feed: str
    cursor: str | None
    updated_at: dt.datetime | None
    caught_up_at: dt.datetime | None
    applied: int
    last_error: str | None

    def lag_seconds(self, now: dt.datetime) -> float | None:
        """Seconds since the follower last reached the end of the feed; None before it ever did."""
        return None if self.caught_up_at is None else max(0.0, (now - self.caught_up_at).total_seconds())


async def feed_position(session: AsyncSession, feed: str) -> FeedPosition:
    row = (await session.execute(select(feed_cursors).where(feed_cursors.c.feed == feed))).mappings().first()
    if row is None:
        return FeedPosition(feed, None, None, None, 0, None)
    return FeedPosition(
        feed, row["cursor"], row["updated_at"], row["caught_up_at"], row["applied"], row["last_error"]
    )  # fmt: skip


@dataclass(frozen=True)
class Followed:
    """What one `follow_feed` call did: the entries it applied, and whether more are waiting (after its page,
    or being applied by another replica that moved the cursor first)."""

    applied: int
    more: bool


async def follow_feed(
    database: Database, peer: PeerClient, *, feed: str, path: str, apply: ApplyPage, limit: int = 200
) -> Followed | None:
    """Read the next page of a peer's feed and apply it in one transaction together with the new cursor.

    Returns None when the peer could not be read (the error is kept on the cursor row). The peer is asked with
    no transaction open; the page is applied only if the cursor is still where it was read from (else another
    replica applied it meanwhile, and this call applies nothing), so a crash, a slow peer or a second replica
    neither loses a page nor applies one twice.
    """
    async with database.session_scope() as session:
        row = {"feed": feed, "cursor": None, "updated_at": utcnow(), "applied": 0}
        await insert_ignore(session, feed_cursors, [row])
    async with database.session_scope(read_only=True) as session:
        query = select(feed_cursors.c.cursor).where(feed_cursors.c.feed == feed)
        cursor = (await session.execute(query)).scalar_one()
    params: dict[str, Any] = {"limit": limit, **({"after": cursor} if cursor else {})}
    try:
        response = await peer.get(path, params=params)
        if response.status_code != 200:
            raise PeerUnavailable(peer.name, f"{path} answered {response.status_code}")
        page = response.json()
    except PeerUnavailable as exc:
        async with database.session_scope() as session:
            await _update(session, feed, last_error=str(exc)[:500], updated_at=utcnow())
        return None
    items: list[dict[str, Any]] = page["items"]
    more = bool(page.get("has_more", bool(items)))
    async with database.session_scope() as session:
        query = select(feed_cursors.c.cursor, feed_cursors.c.applied).where(feed_cursors.c.feed == feed)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        now_at, applied = (await session.execute(query)).one()
        if now_at != cursor:
            return Followed(0, more=bool(items))  # another replica applied this page meanwhile
        if items:
            await apply(session, items)
        now = utcnow()
        values: dict[str, Any] = {"cursor": page["next_cursor"], "updated_at": now, "last_error": None}
        values["applied"] = applied + len(items)
        if not more:
            values["caught_up_at"] = now
        await _update(session, feed, **values)
    return Followed(len(items), more)


async def _update(session: AsyncSession, feed: str, **values: Any) -> None:
    await session.execute(update(feed_cursors).where(feed_cursors.c.feed == feed).values(**values))
