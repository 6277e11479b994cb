"""Applying customer-api's purchase and customer feeds to recommend-api's tables.

Each feed page is applied in one transaction together with its cursor (`crm_kit.feeds.follow_feed`), and
lines are keyed by (order, line number), so a crash mid-page neither loses nor duplicates a line. Lines
are stored under the surviving profile of a merge; an erased customer's lines are deleted, and any that
arrive later are dropped. A merge or an erasure queues a rebuild in the same transaction, so the served
model cannot keep the old history because a crash came between the page and the request.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.base import ReadOnlyColumnCollection

from crm_kit.db import Database, insert_ignore, upsert, utcnow
from crm_kit.feeds import FeedPosition, feed_position, follow_feed
from crm_kit.http import PeerClient
from recommend_api.builds.service import request_build
from recommend_api.sync.models import CustomerState, Item, PurchaseLine

PURCHASE_FEED = "customer-api:purchases"
CUSTOMER_FEED = "customer-api:customers"
MERGE_HOPS = 8  # merges chain (A into B, later B into C); longer chains are not expected
CHUNK = 1000


@dataclass
class SyncResult:
    orders: int = 0
    events: int = 0
    erased: set[uuid.UUID] = field(default_factory=set)
    merged: set[uuid.UUID] = field(default_factory=set)  # the absorbed profiles
    more: bool = False  # stopped with entries still waiting: at the page budget, or another replica applies them
    unreachable: bool = False  # a feed could not be read (its status holds the error)


async def _states(session: AsyncSession, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, CustomerState]:
    states: dict[uuid.UUID, CustomerState] = {}
    wanted = set(ids)
    for _ in range(MERGE_HOPS):
        wanted -= states.keys()
        if not wanted:
            break
        rows = (await session.execute(select(CustomerState).where(CustomerState.customer_id.in_(wanted)))).scalars()
        found = {s.customer_id: s for s in rows}
        states.update(found)
        wanted = {s.merged_into for s in found.values() if s.merged_into is not None}
    return states


def _survivor(states: dict[uuid.UUID, CustomerState], customer_id: uuid.UUID) -> uuid.UUID | None:
    """The profile a customer's purchases belong to now; None when they were erased."""
    for _ in range(MERGE_HOPS):
        state = states.get(customer_id)
        if state is None or state.status == "active":
            return customer_id
        if state.status == "erased" or state.merged_into is None:
            return None
        customer_id = state.merged_into
    return customer_id


async def apply_purchases(session: AsyncSession, orders: list[dict[str, Any]]) -> None:
    states = await _states(session, (uuid.UUID(o["customer_id"]) for o in orders))
    lines: list[dict[str, Any]] = []
    seen: list[tuple[str, str | None, str | None, dt.datetime]] = []
    for order in orders:
        customer_id = _survivor(states, uuid.UUID(order["customer_id"]))
        if customer_id is None:
            continue
        purchased_at = dt.datetime.fromisoformat(order["purchased_at"])
        for line in order["items"]:
            lines.append(
                {"order_id": order["order_id"], "line_no": line["line_no"], "customer_id": customer_id,
                 "sku": line["sku"], "quantity": float(line["quantity"]), "purchased_at": purchased_at,
                 "sequence": order["sequence"]}
            )  # fmt: skip
            seen.append((line["sku"], line.get("name"), line.get("category"), purchased_at))
    for start in range(0, len(lines), CHUNK):
        await insert_ignore(session, PurchaseLine.__table__, lines[start : start + CHUNK])
    await store_items(session, seen)


def _keep_newest(excluded: ReadOnlyColumnCollection[str, Any]) -> dict[str, Any]:
    """A stored name or category gives way only to a known value from a line at least as recent."""
    items = Item.__table__.c
    values: dict[str, Any] = {"updated_at": excluded.updated_at}
    for column in ("name", "category"):
        at = f"{column}_at"
        newer = and_(excluded[column].is_not(None), or_(items[at].is_(None), excluded[at] >= items[at]))
        values[column] = case((newer, excluded[column]), else_=items[column])
        values[at] = case((newer, excluded[at]), else_=items[at])
    return values


async def store_items(session: AsyncSession, seen: Iterable[tuple[str, str | None, str | None, dt.datetime]]) -> None:
    """Record the items of (sku, name, category, purchase time) lines with each one's most recent known name and
    category: a line without a category, or an older line synced later, changes nothing."""
    items: dict[str, dict[str, Any]] = {}
    now = utcnow()
    for sku, name, category, at in seen:
        item = items.setdefault(
            sku, {"sku": sku, "name": None, "name_at": None, "category": None, "category_at": None, "updated_at": now}
        )
        for column, value in (("name", name), ("category", category)):
            if value and (item[f"{column}_at"] is None or at >= item[f"{column}_at"]):
                item[column], item[f"{column}_at"] = value, at
    rows = sorted(items.values(), key=lambda r: r["sku"])  # one lock order for concurrent writers
    for start in range(0, len(rows), CHUNK):
        await upsert(session, Item.__table__, rows[start : start + CHUNK], key=["sku"], update=_keep_newest)


async def _set_state(session: AsyncSession, customer_id: uuid.UUID, **values: Any) -> None:
    row = {"customer_id": customer_id, **values, "updated_at": utcnow()}
    await upsert(session, CustomerState.__table__, [row], key=["customer_id"])


async def apply_customer_events(session: AsyncSession, events: list[dict[str, Any]], result: SyncResult) -> None:
    rebuild: str | None = None  # why the page needs a rebuild that reads the history as it leaves it
    for event in events:
        customer_id = uuid.UUID(event["customer_id"])
        data = event.get("data") or {}
        kind = event["type"]
        if kind in ("created", "consent_changed"):
            consents = data.get("consents", data) if kind == "created" else data
            if "profiling" in consents:
                await _set_state(session, customer_id, profiling=consents["profiling"] != "withdrawn")
        elif kind in ("restricted", "unrestricted"):
            await _set_state(session, customer_id, restricted=kind == "restricted")
        elif kind == "merged":
            into = uuid.UUID(data["merged_into"])
            await _set_state(session, customer_id, status="merged", merged_into=into)
            await session.execute(
                update(PurchaseLine).where(PurchaseLine.customer_id == customer_id).values(customer_id=into)
            )
            await session.execute(
                update(CustomerState).where(CustomerState.merged_into == customer_id).values(merged_into=into)
            )
            rebuild = rebuild or "merge"
            result.merged.add(customer_id)
        elif kind == "erased":
            await _set_state(session, customer_id, status="erased", merged_into=None)
            await session.execute(delete(PurchaseLine).where(PurchaseLine.customer_id == customer_id))
            rebuild = "erasure"
            result.erased.add(customer_id)
    if rebuild is not None:  # one request for the page, in its transaction (the build lock is taken once)
        await request_build(session, reason=rebuild, fresh=True)


async def sync_once(database: Database, peer: PeerClient, *, page_size: int, max_pages: int = 1000) -> SyncResult:
    """Follow the customer feed, then the purchase feed, a page per transaction, until caught up or out
    of pages. Another replica following the same feed makes this one skip it (and report `more`)."""
    result = SyncResult()
    pages = 0

    async def apply_events(session: AsyncSession, events: list[dict[str, Any]]) -> None:
        await apply_customer_events(session, events, result)

    for feed, path, apply in (
        (CUSTOMER_FEED, "/v1/feeds/customers", apply_events),
        (PURCHASE_FEED, "/v1/feeds/purchases", apply_purchases),
    ):
        while True:
            if pages >= max_pages:
                result.more = True
                return result
            followed = await follow_feed(database, peer, feed=feed, path=path, apply=apply, limit=page_size)
            pages += 1
            if followed is None:
                result.unreachable = True
                break  # customer-api could not be read: the status shows why
            if feed == PURCHASE_FEED:
                result.orders += followed.applied
            else:
                result.events += followed.applied
            if not followed.more:
                break
            if not followed.applied:  # another replica moved the cursor first and is applying the rest
                result.more = True
                break
    return result


@dataclass(frozen=True)
class SyncStatus:
    purchases: FeedPosition
    customers: FeedPosition
    lines: int
    customers_with_history: int


async def sync_status(session: AsyncSession) -> SyncStatus:
    # Positions first: each statement sees its own snapshot (READ COMMITTED), and a page committed between them
    # must not show as applied with its lines not yet counted.
    purchases = await feed_position(session, PURCHASE_FEED)
    customer_feed = await feed_position(session, CUSTOMER_FEED)
    lines, customers = (
        await session.execute(select(func.count(), func.count(func.distinct(PurchaseLine.customer_id))))
    ).one()
    return SyncStatus(
        purchases=purchases,
        customers=customer_feed,
        lines=lines,
        customers_with_history=customers,
    )
