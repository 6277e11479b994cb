"""Build jobs: requests deduplicated, one replica claims and builds, every replica loads the result.

A request while another build is queued or running returns that build instead of queueing a second one;
a request that must see the history as it is now (after an erasure or a merge) waits for no build that has
already read it, only for one still queued.
Whoever claims a build reports a heartbeat while it runs; a build whose worker went silent (a crash) is
taken over by another replica, and one whose worker is stopping (SIGTERM) is queued again at once, so a build
is never lost and never runs twice at once. Only the newest built model is kept.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_kit.background import holding_claim
from crm_kit.db import Database, skip_locked, transaction_lock, utcnow
from crm_kit.errors import failure_text
from recommend_api.builds.models import ModelVersion
from recommend_api.engine.data import Transactions
from recommend_api.engine.evaluation import evaluate
from recommend_api.engine.model import Model, Params
from recommend_api.sync.models import Item, PurchaseLine

BUILD_LOCK = "recommend-api:model-builds"
PENDING = ("queued", "building")


async def request_build(
    session: AsyncSession, *, reason: str, evaluate: bool = True, fresh: bool = False
) -> tuple[ModelVersion, bool]:
    """Queue a build, or return the one already queued or running (`fresh`: only one still queued, since a
    running build read the history before this change); says whether a new one was queued."""
    await transaction_lock(session, BUILD_LOCK)
    waiting = ("queued",) if fresh else PENDING
    query = select(ModelVersion).where(ModelVersion.status.in_(waiting)).order_by(ModelVersion.version).limit(1)
    pending = (await session.execute(query)).scalar_one_or_none()
    if pending is not None:
        return pending, False
    version = ModelVersion(status="queued", reason=reason, evaluate=evaluate, requested_at=utcnow())
    session.add(version)
    await session.flush()
    return version, True


async def latest_ready(session: AsyncSession) -> ModelVersion | None:
    query = select(ModelVersion).where(ModelVersion.status == "ready").order_by(ModelVersion.version.desc()).limit(1)
    return (await session.execute(query)).scalar_one_or_none()


async def rebuild_due(session: AsyncSession, *, every_minutes: float) -> bool:
    """Whether a scheduled rebuild is due: no model yet and purchases exist, or the newest model is older
    than the interval and purchases arrived since it was built."""
    newest_line = (await session.execute(select(func.max(PurchaseLine.purchased_at)))).scalar_one_or_none()
    if newest_line is None:
        return False
    latest = await latest_ready(session)
    if latest is None:
        return True
    if every_minutes <= 0 or latest.finished_at is None:
        return False
    old = utcnow() - latest.finished_at > dt.timedelta(minutes=every_minutes)
    return old and (latest.data_until is None or newest_line > latest.data_until)


@dataclass(frozen=True)
class Claim:
    version: int
    evaluate: bool
    builder: str
    started_at: dt.datetime  # tells this claim from a later one on the same version (after a stale takeover)


async def claim_build(database: Database, *, builder: str, stale_seconds: float) -> Claim | None:
    async with database.session_scope() as session:
        now = utcnow()
        stale = now - dt.timedelta(seconds=stale_seconds)
        query = (
            select(ModelVersion)
            .where(
                or_(
                    ModelVersion.status == "queued",
                    and_(ModelVersion.status == "building", ModelVersion.heartbeat_at < stale),
                )
            )
            .order_by(ModelVersion.version)
            .limit(1)
        )
        version = (await session.execute(skip_locked(session, query))).scalar_one_or_none()
        if version is None:
            return None
        version.status, version.started_at, version.heartbeat_at, version.builder = "building", now, now, builder
        return Claim(version.version, version.evaluate, builder, now)


async def load_transactions(session: AsyncSession) -> Transactions:
    """Every synced line as the engine's arrays. Identifiers are rendered once per customer, not per line."""
    query = select(
        PurchaseLine.customer_id, PurchaseLine.order_id, PurchaseLine.sku, PurchaseLine.purchased_at,
        PurchaseLine.quantity,
    )  # fmt: skip
    rows = (await session.execute(query)).all()
    categories = dict((await session.execute(select(Item.sku, Item.category))).all())
    if not rows:
        return Transactions.from_lines(customer_id=[], order_id=[], sku=[], category=[], purchased_at=[])
    customers, orders, skus, times, quantities = zip(*rows, strict=True)
    names: dict[object, str] = {}
    customer_ids = [names.get(c) or names.setdefault(c, str(c)) for c in customers]
    return Transactions.from_lines(
        customer_id=customer_ids,
        order_id=orders,
        sku=skus,
        category=[categories.get(s) for s in skus],
        purchased_at=np.fromiter((t.timestamp() for t in times), dtype=np.float64, count=len(times)),
        quantity=np.asarray(quantities, dtype=np.float32),
    )


@dataclass(frozen=True)
class Built:
    model: Model
    blob: bytes
    evaluation: dict[str, dict[str, float]] | None
    seconds: float


def build(tx: Transactions, params: Params, *, with_evaluation: bool) -> Built:
    """CPU work, run in a thread: the model from every line, and its holdout evaluation."""
    started = time.perf_counter()
    model = Model.build(tx, params)
    evaluation = None
    if with_evaluation:
        evaluation = {name: dataclasses.asdict(m) for name, m in evaluate(tx, params).items()}
    return Built(model, model.to_bytes(), evaluation, time.perf_counter() - started)


async def run_build(
    database: Database, claim: Claim, params: Params, *, heartbeat_seconds: float,
    progress: Callable[[str], Awaitable[None]] | None = None,
) -> None:  # fmt: skip
    """Build a claimed version and store it (or its failure). The heartbeat keeps the claim alive; cancelled (the
    process is stopping), the version is queued again before the cancellation goes on. `progress` hears each
    stage as it starts."""
    mine = (
        ModelVersion.version == claim.version,
        ModelVersion.status == "building",
        ModelVersion.builder == claim.builder,
        ModelVersion.started_at == claim.started_at,
    )

    async def stage(name: str) -> None:
        if progress is not None:
            await progress(name)

    async def beat() -> None:
        async with database.session_scope() as session:
            await session.execute(update(ModelVersion).where(*mine).values(heartbeat_at=utcnow()))

    async def release() -> None:
        async with database.session_scope() as session:
            await session.execute(
                update(ModelVersion)
                .where(*mine)
                .values(status="queued", started_at=None, heartbeat_at=None, builder=None)
            )

    async with holding_claim(beat=beat, every=heartbeat_seconds, release=release):
        try:
            await stage("reading")
            async with database.session_scope(read_only=True) as session:
                tx = await load_transactions(session)
            await stage("building")
            built = await asyncio.to_thread(build, tx, params, with_evaluation=claim.evaluate)
        except Exception as exc:
            async with database.session_scope() as session:
                await session.execute(
                    update(ModelVersion)
                    .where(ModelVersion.version == claim.version)
                    .values(status="failed", finished_at=utcnow(), error=failure_text(exc))
                )
            raise
        await stage("storing")
        data_until = dt.datetime.fromtimestamp(float(tx.basket_time.max()), dt.UTC) if len(tx.basket_time) else None
        async with database.session_scope() as session:
            await session.execute(
                update(ModelVersion)
                .where(ModelVersion.version == claim.version)
                .values(
                    status="ready", finished_at=utcnow(), heartbeat_at=utcnow(), data_until=data_until,
                    build_seconds=round(built.seconds, 3), params=dataclasses.asdict(params),
                    sizes=dict(built.model.sizes), evaluation=built.evaluation, blob=built.blob,
                )
            )  # fmt: skip
            await drop_superseded_blobs(session)


async def drop_superseded_blobs(session: AsyncSession) -> None:
    """Keep the model of the newest ready version only (the one every replica serves): an older one holds the
    history as it was, an erased customer's included, and would grow the table by a model a build. Their
    version, sizes and evaluation stay."""
    newest = select(func.max(ModelVersion.version)).where(ModelVersion.status == "ready").scalar_subquery()
    await session.execute(
        update(ModelVersion).where(ModelVersion.version < newest, ModelVersion.blob.is_not(None)).values(blob=None)
    )
