"""Each item's latest known category, held in memory for serving.

The served model knows the categories of the items it was built from only; a win-back offer must also avoid the
category of a complained SKU first bought since (a customer complains about what they bought yesterday). Refreshed
with the audience, off the hot path (after each sync on this replica, on a timer on the others).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from recommend_api.sync.audience import changed_since
from recommend_api.sync.models import Item


@dataclass
class Catalogue:
    categories: dict[str, str] = field(default_factory=dict)
    watermark: dt.datetime | None = None

    def category_of(self, sku: str) -> str | None:
        return self.categories.get(sku)


async def refresh_catalogue(session: AsyncSession, catalogue: Catalogue) -> Catalogue:
    """Apply the items changed since the last refresh (see :data:`~recommend_api.sync.audience.REREAD`)."""
    query = changed_since(select(Item.sku, Item.category, Item.updated_at), Item.updated_at, catalogue.watermark)
    for sku, category, updated_at in (await session.execute(query)).all():
        if category:
            catalogue.categories[sku] = category
        catalogue.watermark = updated_at
    return catalogue
