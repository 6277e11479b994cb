"""Contact history rules: entries are appended, a source's retry finds its first entry."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from crm_kit.db import utcnow
from crm_kit.errors import Conflict, NotFound
from customer_api.customers.service import resolve_customer_id
from customer_api.interactions.models import Interaction
from customer_api.interactions.schemas import InteractionCreate


async def _by_source(session: AsyncSession, source: str, external_id: str) -> Interaction | None:
    query = select(Interaction).where(Interaction.source == source, Interaction.external_id == external_id)
    return (await session.execute(query)).scalar_one_or_none()


def _retried(existing: Interaction, customer_id: uuid.UUID, data: InteractionCreate) -> Interaction:
    """The stored entry of a source record sent again: only for the same customer and the same content, since
    another customer's entry is theirs to see, and a changed record is not the one stored."""
    if existing.customer_id != customer_id:
        raise Conflict(
            f"{data.source} record {data.external_id} is already in another customer's contact history",
            field="external_id",
        )
    sent = data.model_dump(exclude={"occurred_at"})
    if any(getattr(existing, field) != value for field, value in sent.items()) or (
        data.occurred_at is not None and existing.occurred_at != data.occurred_at
    ):
        raise Conflict(
            f"{data.source} record {data.external_id} is already recorded with other content", field="external_id"
        )
    return existing


async def record_interaction(
    session: AsyncSession, *, customer_id: uuid.UUID, data: InteractionCreate
) -> tuple[Interaction, bool]:
    """Append an entry to the customer's contact history; returns it and whether it is new."""
    live_id = await resolve_customer_id(session, customer_id)
    if data.source and data.external_id:
        existing = await _by_source(session, data.source, data.external_id)
        if existing is not None:
            return _retried(existing, live_id, data), False
    now = utcnow()
    interaction = Interaction(
        id=uuid7(),
        customer_id=live_id,
        created_at=now,
        **data.model_dump(exclude={"occurred_at"}),
        occurred_at=data.occurred_at or now,
    )
    try:
        async with session.begin_nested():
            session.add(interaction)
            await session.flush()
    except IntegrityError:
        # The same source record raced in from a retry; the stored one answers.
        existing = await _by_source(session, data.source or "", data.external_id or "")
        if existing is None:
            raise
        return _retried(existing, live_id, data), False
    return interaction, True


async def customer_interactions(
    session: AsyncSession, *, customer_id: uuid.UUID, kind: str | None, after: tuple[Any, ...] | None, limit: int
) -> Sequence[Interaction]:
    """The contact timeline, newest first; `after` is the (occurred_at, id) of the last entry seen."""
    query = select(Interaction).where(Interaction.customer_id == customer_id)
    if kind is not None:
        query = query.where(Interaction.kind == kind)
    if after is not None:
        at, last_id = after
        query = query.where(
            or_(Interaction.occurred_at < at, and_(Interaction.occurred_at == at, Interaction.id < last_id))
        )
    query = query.order_by(Interaction.occurred_at.desc(), Interaction.id.desc()).limit(limit + 1)
    return (await session.execute(query)).scalars().all()


async def get_interaction(session: AsyncSession, *, customer_id: uuid.UUID, interaction_id: uuid.UUID) -> Interaction:
    """One entry of the customer's timeline (the Location a recorded entry answers with)."""
    query = select(Interaction).where(Interaction.id == interaction_id, Interaction.customer_id == customer_id)
    interaction = (await session.execute(query)).scalar_one_or_none()
    if interaction is None:
        raise NotFound(f"customer {customer_id} has no contact entry {interaction_id}")
    return interaction
