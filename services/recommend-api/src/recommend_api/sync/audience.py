"""Who may get personal recommendations, and where merged profiles went: held in memory for serving.

Built from `customer_states` and refreshed off the hot path (after each sync on this replica, on a timer
on the others). Everyone not listed is an active customer with consent.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from recommend_api.sync.models import CustomerState

MERGE_HOPS = 8
#: How far before the watermark a refresh reads again. Rows are stamped with the writing replica's clock, so a
#: replica whose clock is behind writes rows older than the newest one already read; re-applying them is harmless.
REREAD = dt.timedelta(seconds=60)


Q = TypeVar("Q", bound=Select[*tuple[Any, ...]])


def changed_since(query: Q, column: InstrumentedAttribute[dt.datetime], watermark: dt.datetime | None) -> Q:
    """The rows of ``query`` stamped at or after the watermark less :data:`REREAD`, oldest first."""
    if watermark is not None:
        query = query.where(column >= watermark - REREAD)
    return query.order_by(column)


@dataclass
class Audience:
    aliases: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)
    erased: set[uuid.UUID] = field(default_factory=set)
    not_profiled: set[uuid.UUID] = field(default_factory=set)  # restricted or profiling consent withdrawn
    watermark: dt.datetime | None = None

    def resolve(self, customer_id: uuid.UUID) -> tuple[uuid.UUID, bool]:
        """The live profile behind an id, and whether it may be served from its personal history."""
        for _ in range(MERGE_HOPS):
            target = self.aliases.get(customer_id)
            if target is None:
                break
            customer_id = target
        personal = customer_id not in self.erased and customer_id not in self.not_profiled
        return customer_id, personal

    def apply(self, state: CustomerState) -> None:
        cid = state.customer_id
        self.aliases.pop(cid, None)
        self.erased.discard(cid)
        self.not_profiled.discard(cid)
        if state.status == "merged" and state.merged_into is not None:
            self.aliases[cid] = state.merged_into
        elif state.status == "erased":
            self.erased.add(cid)
        if state.restricted or not state.profiling:
            self.not_profiled.add(cid)


async def refresh_audience(session: AsyncSession, audience: Audience) -> Audience:
    """Apply the states changed since the last refresh (see :data:`REREAD`)."""
    query = changed_since(select(CustomerState), CustomerState.updated_at, audience.watermark)
    for state in (await session.execute(query)).scalars():
        audience.apply(state)
        audience.watermark = state.updated_at
    return audience
