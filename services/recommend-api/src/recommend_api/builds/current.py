"""The model a replica serves: loaded from the database, swapped in whole while requests are served."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from recommend_api.builds.models import ModelVersion
from recommend_api.builds.service import latest_ready
from recommend_api.engine.model import Model
from recommend_api.sync.models import Item


@dataclass(frozen=True)
class CurrentModel:
    version: int
    model: Model
    names: dict[str, str | None]  # sku → the latest name seen on an order line
    built_at: dt.datetime | None
    data_until: dt.datetime | None
    build_seconds: float | None
    params: dict[str, Any] | None
    sizes: dict[str, Any] | None
    evaluation: dict[str, Any] | None


async def load_newer(session: AsyncSession, than: int | None) -> CurrentModel | None:
    """The newest built model when it is not version `than` (the one served); None otherwise."""
    latest = await latest_ready(session)
    if latest is None or latest.version == than:
        return None
    query = select(ModelVersion).where(ModelVersion.version == latest.version).options(undefer(ModelVersion.blob))
    row = (await session.execute(query.execution_options(populate_existing=True))).scalar_one()
    if row.blob is None:
        return None  # a newer build replaced it between the two reads: the next poll loads that one
    model = await asyncio.to_thread(Model.from_bytes, row.blob)
    names = dict((await session.execute(select(Item.sku, Item.name))).all())
    return CurrentModel(
        version=row.version, model=model, names=names, built_at=row.finished_at, data_until=row.data_until,
        build_seconds=row.build_seconds, params=row.params, sizes=row.sizes, evaluation=row.evaluation,
    )  # fmt: skip
