"""PIPL access and portability: everything the archive holds about one person, as one document, the value the
analysis gives them included."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from crm_kit.db import utcnow
from customer_api.analytics.service import value_of
from customer_api.config import Settings
from customer_api.customers.models import Customer, CustomerEvent
from customer_api.customers.schemas import CustomerEventRead, customer_read
from customer_api.customers.service import absorbed_identifiers, get_customer
from customer_api.interactions.models import Interaction
from customer_api.interactions.schemas import InteractionRead
from customer_api.purchases.models import Purchase
from customer_api.purchases.schemas import PurchaseRead


async def export_customer(session: AsyncSession, *, customer_id: uuid.UUID, settings: Settings) -> dict[str, Any]:
    customer = await get_customer(session, customer_id)
    identifiers = (await absorbed_identifiers(session, [customer.id]))[customer.id]
    # Profiles merged into this one are the same person: their own change events come along.
    absorbed = select(Customer.id).where(Customer.merged_into == customer.id)
    purchases = (
        await session.execute(
            select(Purchase)
            .where(Purchase.customer_id == customer.id)
            .options(selectinload(Purchase.lines))
            .order_by(Purchase.purchased_at)
        )
    ).scalars()
    interactions = (
        await session.execute(
            select(Interaction).where(Interaction.customer_id == customer.id).order_by(Interaction.occurred_at)
        )
    ).scalars()
    events = (
        await session.execute(
            select(CustomerEvent)
            .where(or_(CustomerEvent.customer_id == customer.id, CustomerEvent.customer_id.in_(absorbed)))
            .order_by(CustomerEvent.sequence)
        )
    ).scalars()
    return {
        "exported_at": utcnow().isoformat(),
        "profile": customer_read(customer, absorbed=identifiers, show_pii=True).model_dump(mode="json"),
        "purchases": [PurchaseRead.model_validate(p).model_dump(mode="json") for p in purchases],
        "interactions": [InteractionRead.model_validate(i).model_dump(mode="json") for i in interactions],
        "events": [CustomerEventRead.model_validate(e).model_dump(mode="json") for e in events],
        "value": (await value_of(session, customer, settings)).model_dump(mode="json"),
    }
