"""The value refresh and the reads of its results.

A refresh reads every live customer and their purchase days up to the observation date, scores RFM,
places customers in the value pyramid, fits BG/NBD and Gamma-Gamma, judges churn risk, and writes it
all in one transaction under a lock that every replica honours. Customers who are restricted or who
withdrew profiling consent are left out: no value row, no segment, no recomputed tier.

Repurchase rates (the control group of complaint statistics) are read straight from the purchases.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import typing
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Row, Table, bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql import ColumnElement

from crm_kit.db import Database, local_date, transaction_lock, utcnow
from customer_api.analytics import clv
from customer_api.analytics.models import ClvModel, CustomerValue
from customer_api.analytics.schemas import CustomerValueRead, Rfm
from customer_api.analytics.scoring import (
    ChurnRules,
    FloatArray,
    IntArray,
    PurchaseSummary,
    assess_churn,
    quintile_scores,
    segments,
    summarize,
    tiers,
)
from customer_api.config import Settings
from customer_api.customers.models import Customer, CustomerEvent
from customer_api.customers.service import CUSTOMER_FEED, consent_status, profiling_allowed
from customer_api.purchases.models import Purchase

log = logging.getLogger(__name__)

REFRESH_LOCK = "customer-api:value-refresh"
# Refresh writes go through the tables: the ORM's bulk insert splits rows by which columns are None
# (thousands of statements for one batch); a table insert sends each batch as one executemany.
CUSTOMERS = typing.cast(Table, Customer.__table__)
VALUES = typing.cast(Table, CustomerValue.__table__)
EVENTS = typing.cast(Table, CustomerEvent.__table__)
MIN_MODEL_CUSTOMERS = 10
WRITE_CHUNK = 5000
Progress = Callable[[str, float], Awaitable[None]]


def profiled(session: AsyncSession) -> Any:
    """SQL condition: the customer may be profiled (not restricted, profiling consent not withdrawn)."""
    return Customer.restricted.is_(False) & (func.coalesce(consent_status(session, "profiling"), "") != "withdrawn")


def observation_day(as_of: dt.datetime, timezone: str) -> int:
    """The last business day the observation covers: purchases strictly before `as_of` count."""
    return (as_of - dt.timedelta(microseconds=1)).astimezone(ZoneInfo(timezone)).date().toordinal()


@dataclass(frozen=True)
class PurchaseDays:
    """One entry per (customer, business day) with purchases: the customer's index, the day, the spend in cents."""

    customer_index: IntArray
    day: IntArray
    spend: IntArray

    def before(self, last_day: int) -> PurchaseDays:
        keep = self.day <= last_day
        return PurchaseDays(self.customer_index[keep], self.day[keep], self.spend[keep])


async def load_purchase_days(
    session: AsyncSession, index: dict[uuid.UUID, int], *, as_of: dt.datetime, timezone: str
) -> PurchaseDays:
    day = local_date(session, Purchase.purchased_at, timezone)
    rows = await session.execute(
        select(Purchase.customer_id, day, func.sum(Purchase.total))
        .where(Purchase.purchased_at < as_of)
        .group_by(Purchase.customer_id, day)
    )
    customers, days, spends = [], [], []
    for customer_id, when, spend in rows:
        position = index.get(customer_id)
        if position is None:
            continue
        customers.append(position)
        days.append((when if isinstance(when, dt.date) else dt.date.fromisoformat(when)).toordinal())
        spends.append(int((spend * 100).to_integral_value()))
    return PurchaseDays(
        np.array(customers, dtype=np.int64), np.array(days, dtype=np.int64), np.array(spends, dtype=np.int64)
    )


@dataclass(frozen=True)
class ModelInputs:
    """BG/NBD and Gamma-Gamma inputs for the customers with at least one purchase day."""

    buyers: IntArray  # customer indexes
    frequency: FloatArray  # repeat purchase days
    recency: FloatArray  # time of the last purchase day since the first, in model time units
    age: FloatArray  # time from the first purchase day to the observation day (T)
    monetary: FloatArray  # mean spend of the repeat purchase days (0 where there are none)


def model_inputs(summary: PurchaseSummary, *, last_day: int, unit_days: int) -> ModelInputs:
    buyers = np.flatnonzero(summary.days > 0)
    repeat = summary.days[buyers] - 1
    repeat_spend = (summary.total_spend[buyers] - summary.first_day_spend[buyers]) / 100
    return ModelInputs(
        buyers=buyers,
        frequency=repeat.astype(np.float64),
        recency=(summary.last_day[buyers] - summary.first_day[buyers]) / unit_days,
        age=(last_day - summary.first_day[buyers]) / unit_days,
        monetary=np.divide(repeat_spend, repeat, out=np.zeros(buyers.size), where=repeat > 0),
    )


def fit_models(inputs: ModelInputs) -> tuple[clv.BGNBDParams | None, clv.GammaGammaParams | None]:
    """Fit both models where the data allow; a base too small or without repeat buying gets none."""
    bg = gg = None
    if inputs.buyers.size >= MIN_MODEL_CUSTOMERS and inputs.frequency.sum() > 0:
        try:
            bg = clv.fit_bgnbd(inputs.frequency, inputs.recency, inputs.age)
        except (ValueError, FloatingPointError) as exc:
            log.warning("bgnbd_fit_failed", extra={"error": str(exc)})
    repeaters = (inputs.frequency > 0) & (inputs.monetary > 0)
    if repeaters.sum() >= MIN_MODEL_CUSTOMERS:
        try:
            gg = clv.fit_gamma_gamma(inputs.frequency[repeaters], inputs.monetary[repeaters])
        except (ValueError, FloatingPointError) as exc:
            log.warning("gamma_gamma_fit_failed", extra={"error": str(exc)})
    return bg, gg


def holdout_check(
    purchases: PurchaseDays, customers: int, *, calibration_last_day: int, holdout_last_day: int, unit_days: int
) -> dict[str, Any] | None:
    """Fit on the calibration period, predict each customer's repeat purchase days in the holdout,
    compare with what they did: per calibration frequency (0 … 6, 7+) and in total."""
    calibration = summarize(
        customers,
        *_arrays(purchases.before(calibration_last_day)),
        as_of_day=calibration_last_day,
        rfm_window_days=1,
        tier_window_days=1,
    )
    inputs = model_inputs(calibration, last_day=calibration_last_day, unit_days=unit_days)
    bg, _ = fit_models(inputs)
    if bg is None:
        return None
    in_holdout = (purchases.day > calibration_last_day) & (purchases.day <= holdout_last_day)
    actual = np.bincount(purchases.customer_index[in_holdout], minlength=customers)[inputs.buyers]
    horizon = (holdout_last_day - calibration_last_day) / unit_days
    predicted = clv.conditional_expected_purchases(bg, horizon, inputs.frequency, inputs.recency, inputs.age)
    groups = []
    for label, members in [(str(k), inputs.frequency == k) for k in range(7)] + [("7+", inputs.frequency >= 7)]:
        if members.any():
            groups.append(
                {
                    "frequency": label,
                    "customers": int(members.sum()),
                    "predicted_mean": round(float(predicted[members].mean()), 4),
                    "actual_mean": round(float(actual[members].mean()), 4),
                }
            )
    return {
        "calibration_end": dt.date.fromordinal(calibration_last_day).isoformat(),
        "holdout_end": dt.date.fromordinal(holdout_last_day).isoformat(),
        "customers": int(inputs.buyers.size),
        "predicted_repeat_purchases": round(float(predicted.sum()), 2),
        "actual_repeat_purchases": int(actual.sum()),
        "by_frequency": groups,
        "bgnbd": _params(bg),
    }


def _arrays(purchases: PurchaseDays) -> tuple[IntArray, IntArray, IntArray]:
    return purchases.customer_index, purchases.day, purchases.spend


def _params(params: clv.BGNBDParams | clv.GammaGammaParams | None) -> dict[str, Any] | None:
    if params is None:
        return None
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in vars(params).items()}


def _money(value: float | Decimal) -> Decimal:
    return Decimal(str(round(float(value), 2)))


def _yuan(cents: np.int64) -> Decimal:
    return Decimal(int(cents)).scaleb(-2)


def _nan_to_none(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


@dataclass(frozen=True)
class Observation:
    """What a refresh reads: the profiled customers, their purchase days, their previous P(alive)."""

    as_of: dt.datetime
    customers: int  # live customers, profiled or not
    ids: list[uuid.UUID]  # profiled customers; position = index in the arrays
    purchases: PurchaseDays
    previous_p_alive: dict[uuid.UUID, float | None]


@dataclass(frozen=True)
class Valuation:
    """What a refresh writes."""

    values: list[dict[str, Any]]
    wanted: dict[uuid.UUID, tuple[str, str | None]]  # tier and segment per profiled customer
    model: dict[str, Any]
    at_risk: int


async def observe(database: Database, settings: Settings, as_of: dt.datetime) -> Observation:
    async with database.session_scope(read_only=True) as session:
        rows = (
            await session.execute(
                select(Customer.id, Customer.restricted, Customer.consents).where(Customer.status == "active")
            )
        ).all()
        ids = [r.id for r in rows if profiling_allowed(r.restricted, r.consents)]
        index = {customer_id: i for i, customer_id in enumerate(ids)}
        purchases = await load_purchase_days(session, index, as_of=as_of, timezone=settings.business_timezone)
        previous = dict((await session.execute(select(CustomerValue.customer_id, CustomerValue.p_alive))).all())
    return Observation(as_of, len(rows), ids, purchases, previous)


def value_customers(observation: Observation, settings: Settings) -> Valuation:
    """Score, fit and judge every profiled customer. CPU-bound: runs off the event loop."""
    ids, n, as_of = observation.ids, len(observation.ids), observation.as_of
    last_day = observation_day(as_of, settings.business_timezone)
    summary = summarize(
        n,
        *_arrays(observation.purchases),
        as_of_day=last_day,
        rfm_window_days=settings.rfm_window_days,
        tier_window_days=settings.tier_window_days,
    )
    buyers = summary.days > 0
    recency_days = np.where(buyers, last_day - summary.last_day, -1)
    r = np.zeros(n, dtype=np.int64)
    f = np.zeros(n, dtype=np.int64)
    m = np.zeros(n, dtype=np.int64)
    r[buyers] = quintile_scores(recency_days[buyers].astype(np.float64), higher_is_better=False)
    f[buyers] = quintile_scores(summary.window_days[buyers].astype(np.float64))
    m[buyers] = quintile_scores(summary.window_spend[buyers])
    segment_of = np.full(n, None, dtype=object)
    segment_of[buyers] = segments(r[buyers], f[buyers], settings.rfm_segments)
    tier_of = tiers(summary.tier_spend, settings.tier_shares)

    unit = settings.clv_time_unit_days
    inputs = model_inputs(summary, last_day=last_day, unit_days=unit)
    bg, gg = fit_models(inputs)
    p_alive = np.full(n, np.nan)
    expected = np.full(n, np.nan)
    order_value = np.full(n, np.nan)
    predicted = np.full(n, np.nan)
    if bg is not None:
        args = (inputs.frequency, inputs.recency, inputs.age)
        p_alive[inputs.buyers] = clv.p_alive(bg, *args)
        expected[inputs.buyers] = clv.conditional_expected_purchases(bg, settings.clv_expected_days / unit, *args)
        if gg is not None:
            order_value[inputs.buyers] = clv.expected_average_order_value(gg, inputs.frequency, inputs.monetary)
            steps = 12
            period_rate = (1 + settings.clv_annual_discount_rate) ** (settings.clv_horizon_days / 365 / steps) - 1
            predicted[inputs.buyers] = clv.predicted_value(
                bg, gg, *args, inputs.monetary,
                horizon=settings.clv_horizon_days / unit, discount_rate=period_rate, steps=steps,
            )  # fmt: skip
    holdout = None
    if settings.clv_holdout_days > 0 and bg is not None:
        holdout = holdout_check(
            observation.purchases,
            n,
            calibration_last_day=last_day - settings.clv_holdout_days,
            holdout_last_day=last_day,
            unit_days=unit,
        )

    intervals = np.divide(
        (summary.last_day - summary.first_day).astype(np.float64),
        summary.days - 1,
        out=np.full(n, np.nan),
        where=summary.days >= 3,
    )
    previous = observation.previous_p_alive
    previous_p = np.array([previous.get(i) if previous.get(i) is not None else np.nan for i in ids], dtype=float)
    churn = assess_churn(
        rules=ChurnRules(
            p_alive_below=settings.churn_p_alive_below,
            p_alive_drop=settings.churn_p_alive_drop,
            overdue_factor=settings.churn_overdue_factor,
            top_value_share=settings.churn_top_value_share,
        ),
        trailing_spend=summary.tier_spend / 100,
        predicted_value=predicted,
        p_alive=p_alive,
        p_alive_previous=previous_p,
        recency_days=np.where(buyers, recency_days, np.nan).astype(np.float64),
        typical_interval_days=intervals,
    )
    values = [
        {
            "customer_id": ids[i],
            "as_of": as_of,
            "first_purchase_at": _day_start(summary.first_day[i]),
            "last_purchase_at": _day_start(summary.last_day[i]),
            "recency_days": int(recency_days[i]),
            "frequency": int(summary.window_days[i]),
            "monetary": _yuan(summary.window_spend[i]),
            "r_score": int(r[i]),
            "f_score": int(f[i]),
            "m_score": int(m[i]),
            "segment": segment_of[i],
            "trailing_spend": _yuan(summary.tier_spend[i]),
            "established_value": _yuan(summary.total_spend[i]),
            "repeat_purchases": int(summary.days[i] - 1),
            "typical_interval_days": _nan_to_none(intervals[i]),
            "p_alive": _nan_to_none(p_alive[i]),
            "p_alive_previous": previous.get(ids[i]),
            "expected_purchases": _nan_to_none(expected[i]),
            "expected_order_value": None if np.isnan(order_value[i]) else _money(order_value[i]),
            "predicted_value": None if np.isnan(predicted[i]) else _money(predicted[i]),
            "churn_risk": None if np.isnan(p_alive[i]) else float(1 - p_alive[i]),
            "at_risk": bool(churn.at_risk[i]),
            "value_at_risk": _money(churn.value_at_risk[i]),
            "churn_reasons": churn.reasons[i],
        }
        for i in np.flatnonzero(buyers)
    ]
    return Valuation(
        values=values,
        wanted={ids[i]: (tier_of[i], segment_of[i]) for i in range(n)},
        model={
            "as_of": as_of,
            "time_unit_days": unit,
            "customers": int(inputs.buyers.size),
            "bgnbd": _params(bg),
            "gamma_gamma": _params(gg),
            "holdout": holdout,
        },
        at_risk=int(churn.at_risk.sum()),
    )


async def refresh_values(
    database: Database, settings: Settings, *, as_of: dt.datetime, progress: Progress | None = None
) -> dict[str, Any]:
    """Recompute every customer's value as of `as_of`; returns counts for the job record."""

    async def report(stage: str, fraction: float) -> None:
        if progress is not None:
            await progress(stage, fraction)

    await report("reading customers and purchases", 0.05)
    observation = await observe(database, settings, as_of)
    await report("scoring and fitting", 0.3)
    valuation = await asyncio.to_thread(value_customers, observation, settings)
    await report("writing", 0.8)
    now = utcnow()
    async with database.session_scope() as session:
        await transaction_lock(session, REFRESH_LOCK)
        current = await _locked_customers(session)
        # Read under lock: a customer restricted, withdrawn, merged or erased since the observation gets no value.
        allowed = {row.id for row in current if profiling_allowed(row.restricted, row.consents)}
        values = [v for v in valuation.values if v["customer_id"] in allowed]
        model = ClvModel(fitted_at=now, **valuation.model)
        session.add(model)
        await session.flush()
        await session.execute(delete(CustomerValue))
        for start in range(0, len(values), WRITE_CHUNK):
            chunk = [{**v, "model_id": model.id, "computed_at": now} for v in values[start : start + WRITE_CHUNK]]
            await session.execute(insert(VALUES), chunk)
        tier_changes = await _apply_tiers_and_segments(session, current, allowed, valuation.wanted, now)
    await report("done", 1.0)
    return {
        "as_of": as_of.isoformat(),
        "customers": observation.customers,
        "profiled": len(observation.ids),
        "valued": len(valuation.values),
        "tier_changes": tier_changes,
        "model_id": model.id,
        "at_risk": valuation.at_risk,
    }


def _day_start(ordinal: int) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromordinal(int(ordinal)), dt.time(), tzinfo=dt.UTC)


async def _locked_customers(session: AsyncSession) -> Sequence[Row[Any]]:
    """Every live customer's tier, segment and profiling state, locked until the refresh's writes commit."""
    query = select(
        Customer.id, Customer.tier, Customer.tier_locked, Customer.segment, Customer.restricted, Customer.consents
    ).where(Customer.status == "active")
    return (await session.execute(query.with_for_update())).all()


async def _apply_tiers_and_segments(
    session: AsyncSession, current: Sequence[Row[Any]], allowed: set[uuid.UUID],
    wanted: dict[uuid.UUID, tuple[str, str | None]], now: dt.datetime,
) -> int:  # fmt: skip
    """Write new tiers (unless locked) and segments, bump versions, and put tier changes on the feed.

    `current` is the state read under row locks in this transaction (`allowed`: those of it who may be profiled),
    so a tier set by hand meanwhile is never overwritten, no change is announced that did not happen, and a
    customer who left profiling meanwhile keeps no segment.
    """
    updates: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for row in current:
        tier, segment = wanted.get(row.id, (row.tier, None))
        profiled = row.id in allowed
        if row.tier_locked or not profiled:
            tier = row.tier
        if row.id not in wanted or not profiled:
            segment = None
        if (tier, segment) == (row.tier, row.segment):
            continue
        updates.append({"row_id": row.id, "new_tier": tier, "new_segment": segment})
        if tier != row.tier:
            events.append(
                {
                    "customer_id": row.id,
                    "type": "tier_changed",
                    "occurred_at": now,
                    "data": {"from": row.tier, "to": tier, "source": "refresh"},
                }
            )
    table = CUSTOMERS
    statement = (
        update(table)
        .where(table.c.id == bindparam("row_id"))
        .values(
            tier=bindparam("new_tier"), segment=bindparam("new_segment"), version=table.c.version + 1, updated_at=now
        )
    )
    for start in range(0, len(updates), WRITE_CHUNK):
        await session.execute(statement, updates[start : start + WRITE_CHUNK])
    if events:
        await transaction_lock(session, CUSTOMER_FEED)
        for start in range(0, len(events), WRITE_CHUNK):
            await session.execute(insert(EVENTS), events[start : start + WRITE_CHUNK])
    return len(events)


async def customer_value(session: AsyncSession, customer_id: uuid.UUID) -> CustomerValue | None:
    return await session.get(CustomerValue, customer_id)


async def value_of(session: AsyncSession, customer: Customer, settings: Settings) -> CustomerValueRead:
    """A customer's value as `GET /v1/customers/{id}/value` and the PIPL export show it."""
    body: dict[str, Any] = {
        "customer_id": customer.id,
        "profiled": profiling_allowed(customer.restricted, customer.consents),
        "tier": customer.tier,
        "tier_locked": customer.tier_locked,
        "credit_rating": customer.credit_rating,
        "expected_days": settings.clv_expected_days,
        "horizon_days": settings.clv_horizon_days,
    }
    if not body["profiled"]:
        body["excluded_reason"] = "restricted" if customer.restricted else "profiling_consent_withdrawn"
        return CustomerValueRead(**body)
    value = await customer_value(session, customer.id)
    if value is None:
        spent = await session.scalar(select(func.sum(Purchase.total)).where(Purchase.customer_id == customer.id))
        body["established_value"] = spent or Decimal(0)
        return CustomerValueRead(**body)
    body.update(
        as_of=value.as_of,
        computed_at=value.computed_at,
        model_version=value.model_id,
        rfm=Rfm(
            recency_days=value.recency_days,
            frequency=value.frequency,
            monetary=value.monetary,
            r=value.r_score,
            f=value.f_score,
            m=value.m_score,
            segment=value.segment,
        ),
        established_value=value.established_value,
        trailing_spend=value.trailing_spend,
        p_alive=value.p_alive,
        expected_purchases=value.expected_purchases,
        expected_order_value=value.expected_order_value,
        predicted_value=value.predicted_value,
        churn_risk={
            "score": value.churn_risk,
            "at_risk": value.at_risk,
            "value_at_risk": value.value_at_risk,
            "reasons": value.churn_reasons,
        },
    )
    return CustomerValueRead(**body)


async def latest_model(session: AsyncSession) -> ClvModel | None:
    return (await session.execute(select(ClvModel).order_by(ClvModel.id.desc()).limit(1))).scalar_one_or_none()


async def segment_summary(session: AsyncSession) -> dict[str, list[dict[str, Any]]]:
    """Customers, established and predicted value per segment and per tier, over profiled customers."""
    result: dict[str, list[dict[str, Any]]] = {}
    for name, column in (("segments", CustomerValue.segment), ("tiers", Customer.tier)):
        rows = await session.execute(
            select(
                column,
                func.count(),
                func.sum(CustomerValue.established_value),
                func.sum(CustomerValue.predicted_value),
                func.sum(CustomerValue.value_at_risk),
            )
            .join(Customer, Customer.id == CustomerValue.customer_id)
            .where(Customer.status == "active")
            .group_by(column)
            .order_by(func.sum(CustomerValue.established_value).desc())
        )
        result[name] = [
            {
                "name": key,
                "customers": count,
                "established_value": _money(established or 0),
                "predicted_value": _money(predicted or 0),
                "value_at_risk": _money(risk or 0),
            }
            for key, count, established, predicted, risk in rows
        ]
    return result


async def churn_risk(
    session: AsyncSession,
    *,
    tier: str | None,
    owner_id: str | None,
    segment: str | None,
    after: tuple[Decimal, uuid.UUID] | None,
    limit: int,
) -> Sequence[tuple[CustomerValue, Customer]]:
    """Customers at risk, most value at risk first; profiling exclusions are re-checked at read time."""
    query = (
        select(CustomerValue, Customer)
        .join(Customer, Customer.id == CustomerValue.customer_id)
        .where(CustomerValue.at_risk.is_(True), Customer.status == "active", profiled(session))
    )
    for column, value in ((Customer.tier, tier), (Customer.owner_id, owner_id), (CustomerValue.segment, segment)):
        if value is not None:
            query = query.where(column == value)
    if after is not None:
        stake, last_id = after
        query = query.where(
            (CustomerValue.value_at_risk < stake)
            | ((CustomerValue.value_at_risk == stake) & (CustomerValue.customer_id > last_id))
        )
    query = query.order_by(CustomerValue.value_at_risk.desc(), CustomerValue.customer_id).limit(limit + 1)
    return [(value, customer) for value, customer in await session.execute(query)]


def _within_days(session: AsyncSession, later: Any, earlier: Any, days: int) -> ColumnElement[bool]:
    """SQL condition: `later` ≤ `earlier` + `days` days, exact to the millisecond on both databases."""
    if session.get_bind().dialect.name == "postgresql":
        return typing.cast(ColumnElement[bool], later <= earlier + func.make_interval(0, 0, 0, days))
    elapsed_ms = func.round((func.julianday(later) - func.julianday(earlier)) * 86_400_000)
    return elapsed_ms <= days * 86_400_000


async def repurchase_rates(
    session: AsyncSession,
    *,
    start: dt.datetime,
    end: dt.datetime,
    tier: str | None,
    exclude: Sequence[uuid.UUID],
    windows: Sequence[int],
    now: dt.datetime,
) -> dict[str, Any]:
    """How many buyers of [start, end) bought again within each window after their first purchase there.

    Buyers: live customers (not merged, not erased) of `tier` (any when None) with a purchase in the
    period, minus `exclude`. Anchor: a buyer's first purchase in the period. Repurchased within N days:
    another order with anchor < purchased_at ≤ anchor + N days, inside the period or after it. Only
    buyers whose anchor + N days has passed by `now` are eligible for the N-day window, so a window
    still running never counts as "did not buy again".
    """
    buyers = (
        select(Purchase.customer_id, func.min(Purchase.purchased_at).label("anchor"))
        .join(Customer, Customer.id == Purchase.customer_id)
        .where(Customer.status == "active", Purchase.purchased_at >= start, Purchase.purchased_at < end)
        .group_by(Purchase.customer_id)
    )
    if tier is not None:
        buyers = buyers.where(Customer.tier == tier)
    if exclude:
        buyers = buyers.where(Purchase.customer_id.not_in(exclude))
    anchors = buyers.subquery()
    later = aliased(Purchase)
    # Each buyer's next order after the anchor, whenever it came: the first repurchase decides every window.
    following = (
        select(anchors.c.anchor, func.min(later.purchased_at).label("next_at"))
        .select_from(anchors)
        .outerjoin(later, (later.customer_id == anchors.c.customer_id) & (later.purchased_at > anchors.c.anchor))
        .group_by(anchors.c.customer_id, anchors.c.anchor)
        .subquery()
    )
    columns: list[Any] = [func.count()]
    for days in windows:
        observable = following.c.anchor <= now - dt.timedelta(days=days)
        columns.append(func.count().filter(observable))
        columns.append(
            func.count().filter(
                observable,
                following.c.next_at.is_not(None),
                _within_days(session, following.c.next_at, following.c.anchor, days),
            )
        )
    counts = (await session.execute(select(*columns).select_from(following))).one()
    return {
        "as_of": now,
        "tier": tier,
        "customers": counts[0],
        "windows": [
            {
                "days": days,
                "eligible": counts[1 + 2 * i],
                "repurchased": counts[2 + 2 * i],
                "rate": round(counts[2 + 2 * i] / counts[1 + 2 * i], 4) if counts[1 + 2 * i] else None,
            }
            for i, days in enumerate(windows)
        ],
    }
