"""Complaint statistics computed in the database, the same way on SQLite and PostgreSQL.

Over the complaints created in [from, to), per group (or overall):
- volume: complaints taken; the rates below leave cancelled ones out;
- first-contact resolution rate: solved by an answer on the spot, never escalated;
- time to first response and to resolution (hours, wall clock): median and p90 by the nearest-rank
  method — the value at rank ceil(p · n) of the n sorted times — over the complaints that got there;
- SLA breach rate (either target), reopen rate, average satisfaction and how many rated;
- recovery rate and 30- and 90-day repurchase rates of the recovery plans of the group's complaints (at most
  one plan each), defined here once for these statistics and the service-recovery ones (stats/recovery.py):
  recovery rate = recovered / (recovered + at_risk + lost), pending plans are not judged yet; a repurchase
  rate is the share of yes among plans whose evidence says yes or no (null evidence means the window is
  still running without a purchase, so it is left out). They come from the outcomes and evidence stored on
  the plans, so they need no answer from customer-api.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Integer, and_, case, cast, func, literal, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement, Subquery
from sqlalchemy.sql.expression import Label

from complaint_api.complaints.models import Complaint
from complaint_api.recovery.models import RecoveryPlan

GROUPS: dict[str, Any] = {
    "category": Complaint.category,
    "channel": Complaint.channel,
    "department": Complaint.department,
    "assignee": Complaint.assignee_id,
    "root_cause": Complaint.root_cause,
    "priority": Complaint.priority,
}

OUTCOMES = ("pending", "recovered", "at_risk", "lost")
OUTCOME_RATES = ("recovery_rate", "repurchase_30d_rate", "repurchase_90d_rate")


def _hours(session: AsyncSession, later: Any, earlier: Any) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", later - earlier) / 3600.0
    return (func.julianday(later) - func.julianday(earlier)) * 24.0


def _score(session: AsyncSession) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "postgresql":
        return cast(cast(Complaint.satisfaction, JSONB)["score"].astext, Integer)
    return cast(func.json_extract(Complaint.satisfaction, "$.score"), Integer)


async def _percentiles(
    session: AsyncSession, key: Any, value: ColumnElement[Any], where: ColumnElement[bool]
) -> dict[Any, dict[str, float | None]]:
    """Median and p90 of `value` per group by nearest rank: the value at rank ceil(p·n)."""
    ranked = (
        select(
            key.label("key"),
            value.label("value"),
            func.row_number().over(partition_by=key, order_by=value).label("rank"),
            func.count().over(partition_by=key).label("n"),
        )
        .where(where, value.is_not(None))
        .subquery()
    )
    # ceil(p·n) in integers: (n + 1) / 2 for the median, (9n + 9) / 10 for p90.
    median_rank = (ranked.c.n + 1) // 2
    p90_rank = (ranked.c.n * 9 + 9) // 10
    rows = await session.execute(
        select(
            ranked.c.key,
            func.max(case((ranked.c.rank == median_rank, ranked.c.value))),
            func.max(case((ranked.c.rank == p90_rank, ranked.c.value))),
        ).group_by(ranked.c.key)
    )
    return {k: {"median": _round(m), "p90": _round(p)} for k, m, p in rows}


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


def _rate(part: Any, whole: Any) -> float | None:
    return None if not whole else round(part / whole, 4)


def _evidence_flag(session: AsyncSession, name: str) -> ColumnElement[Any]:
    """A boolean of the plan's evidence as 1 or 0; SQL null when it is null or missing."""
    if session.get_bind().dialect.name == "postgresql":
        text = cast(RecoveryPlan.evidence, JSONB)[name].astext
        return case((text == "true", 1), (text == "false", 0))
    return cast(func.json_extract(RecoveryPlan.evidence, f"$.{name}"), Integer)


def plan_outcome_facts(session: AsyncSession) -> list[Label[Any]]:
    """A recovery plan's columns that its outcome figures are computed from (select them per plan)."""
    return [
        RecoveryPlan.outcome.label("outcome"),
        _evidence_flag(session, "repurchase_30d").label("repurchase_30d"),
        _evidence_flag(session, "repurchase_90d").label("repurchase_90d"),
    ]


def plan_outcome_totals(plans: Subquery) -> list[Label[Any]]:
    """Aggregates over a subquery holding `plan_outcome_facts`: plans per outcome (named after it), and the
    repurchase evidence that says yes (`yes_30`, `yes_90`) or says anything (`known_30`, `known_90`)."""
    return [
        *(func.count().filter(plans.c.outcome == outcome).label(outcome) for outcome in OUTCOMES),
        func.sum(plans.c.repurchase_30d).label("yes_30"),
        func.count(plans.c.repurchase_30d).label("known_30"),
        func.sum(plans.c.repurchase_90d).label("yes_90"),
        func.count(plans.c.repurchase_90d).label("known_90"),
    ]


def plan_outcome_rates(totals: Any) -> dict[str, float | None]:
    """The OUTCOME_RATES from a row of `plan_outcome_totals` (see the module docstring)."""
    return {
        "recovery_rate": _rate(totals.recovered, totals.recovered + totals.at_risk + totals.lost),
        "repurchase_30d_rate": _rate(totals.yes_30, totals.known_30),
        "repurchase_90d_rate": _rate(totals.yes_90, totals.known_90),
    }


async def _plan_outcomes(
    session: AsyncSession, key: Any, where: ColumnElement[bool]
) -> dict[Any, dict[str, float | None]]:
    """The OUTCOME_RATES per group over the recovery plans of the complaints `where` selects."""
    plans = (
        select(key.label("key"), *plan_outcome_facts(session))
        .join_from(Complaint, RecoveryPlan, RecoveryPlan.complaint_id == Complaint.id)
        .where(where)
        .subquery()
    )
    rows = await session.execute(select(plans.c.key, *plan_outcome_totals(plans)).group_by(plans.c.key))
    return {row.key: plan_outcome_rates(row) for row in rows}


async def complaint_stats(
    session: AsyncSession, *, start: dt.datetime, end: dt.datetime, group_by: str | None
) -> list[dict[str, Any]]:
    key = GROUPS[group_by] if group_by else literal("all")
    period = and_(Complaint.created_at >= start, Complaint.created_at < end)
    counted = and_(period, Complaint.status != "cancelled")
    never_escalated = Complaint.department.is_(None)
    totals = await session.execute(
        select(
            key,
            func.count(),
            func.count().filter(Complaint.status != "cancelled"),
            func.count().filter(Complaint.status != "cancelled", Complaint.resolved_at.is_not(None), never_escalated),
            func.count().filter(
                Complaint.status != "cancelled",
                Complaint.first_response_breached | Complaint.resolution_breached,
            ),
            func.count().filter(Complaint.status != "cancelled", Complaint.reopen_count > 0),
            func.avg(_score(session)),
            func.count(_score(session)),
        )
        .where(period)
        .group_by(key)
    )
    first = await _percentiles(
        session, key, _hours(session, Complaint.first_responded_at, Complaint.created_at), counted
    )
    resolution = await _percentiles(session, key, _hours(session, Complaint.resolved_at, Complaint.created_at), counted)
    recovery = await _plan_outcomes(session, key, counted)
    empty = {"median": None, "p90": None}
    no_plans = dict.fromkeys(OUTCOME_RATES)
    groups = []
    for group, volume, considered, fcr, breached, reopened, satisfaction, rated in totals:
        groups.append(
            {
                "key": group,
                "volume": volume,
                "first_contact_resolution_rate": _rate(fcr, considered),
                "first_response_hours": first.get(group, empty),
                "resolution_hours": resolution.get(group, empty),
                "sla_breach_rate": _rate(breached, considered),
                "reopen_rate": _rate(reopened, considered),
                "satisfaction_average": _round(satisfaction),
                "satisfaction_responses": rated,
                **recovery.get(group, no_plans),
            }
        )
    return sorted(groups, key=lambda g: (-g["volume"], str(g["key"])))
