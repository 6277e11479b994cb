"""Complaint statistics computed in the database, the same way on SQLite and PostgreSQL.

Over the complaints created in [from, to), per group (or overall):
- volume: complaints taken; the rates below leave cancelled ones out;
- first-contact resolution rate: solved by an answer on the spot, never escalated;
- time to first response and to resolution (hours, wall clock): median and p90 by the nearest-rank
  method — the value at rank ceil(p · n) of the n sorted times — over the complaints that got there;
- SLA breach rate (either target), reopen rate, average satisfaction and how many rated.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Integer, and_, case, cast, func, literal, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement

from complaint_api.complaints.models import Complaint

GROUPS: dict[str, Any] = {
    "category": Complaint.category,
    "channel": Complaint.channel,
    "department": Complaint.department,
    "assignee": Complaint.assignee_id,
    "root_cause": Complaint.root_cause,
    "priority": Complaint.priority,
}


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
    empty = {"median": None, "p90": None}
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
            }
        )
    return sorted(groups, key=lambda g: (-g["volume"], str(g["key"])))
