"""Service-recovery (服务复原) statistics, computed in the database the same way on SQLite and PostgreSQL.

Over the recovery plans created in [from, to), per group — plan category, tier, owner, or action type
(a plan counts once under each distinct type of its actions that were not cancelled; plans without
such actions fall under null) — or overall, every figure below is over the group's plans:
- plans, and plans per outcome (pending, recovered, at_risk, lost);
- recovery rate: recovered / (recovered + at_risk + lost); pending plans are not judged yet;
- hours from plan to first completed action: the median by nearest rank (the value at rank ceil(n/2));
- 30- and 90-day repurchase rates: among plans whose evidence says yes or no, the share of yes
  (null evidence means the window is still running without a purchase, so it is left out);
  these three are computed by stats/service.py's `plan_outcome_*`, which the complaint statistics share;
- average satisfaction before (the complaint's score) and after (every follow-up answer);
- coupon redemption rate: redeemed coupons / coupons issued (coupon actions done);
- recovery cost: the value of done actions except points, which are not money; cost per recovered
  customer: that cost / distinct customers of the group's recovered plans;
- control: the 30- and 90-day repurchase rates customer-api reports for the period's buyers who did not
  complain (every plan's customer in the period is excluded) — the recovery paradox test. Grouped by
  tier: the group's tier (every tier for plans without one); otherwise the tier of the group's plans
  when they share one, every tier when they are mixed. Null when customer-api cannot answer (it is down,
  or refuses more than 10,000 complainants to exclude).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import and_, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Subquery

from complaint_api.clients.customer_api import repurchase_control
from complaint_api.recovery.models import FollowUp, RecoveryAction, RecoveryPlan
from complaint_api.stats.service import (
    OUTCOMES,
    _hours,
    _rate,
    _round,
    plan_outcome_facts,
    plan_outcome_rates,
    plan_outcome_totals,
)
from crm_kit.http import PeerClient

GROUPS: dict[str, Any] = {
    "category": RecoveryPlan.category,
    "tier": RecoveryPlan.tier,
    "owner": RecoveryPlan.owner_id,
}
CENT = Decimal("0.01")


def _grouped_plans(session: AsyncSession, start: dt.datetime, end: dt.datetime, group_by: str | None) -> Subquery:
    """One row per (group, plan) of the period, with the plan facts the figures need."""
    columns = [
        RecoveryPlan.id.label("plan_id"),
        RecoveryPlan.customer_id.label("customer_id"),
        RecoveryPlan.tier.label("tier"),
        RecoveryPlan.satisfaction_before.label("satisfaction_before"),
        _hours(session, RecoveryPlan.first_action_at, RecoveryPlan.created_at).label("first_action_hours"),
        *plan_outcome_facts(session),
    ]
    # A cancelled complaint's plan was never carried out: it counts nowhere (its customer may be in the control).
    period = and_(RecoveryPlan.created_at >= start, RecoveryPlan.created_at < end, RecoveryPlan.status != "cancelled")
    if group_by != "action_type":
        key = GROUPS[group_by] if group_by else literal("all")
        return select(key.label("key"), *columns).where(period).subquery()
    types = (
        select(RecoveryAction.plan_id, RecoveryAction.type)
        .where(RecoveryAction.status != "cancelled")
        .distinct()
        .subquery()
    )
    return (
        select(types.c.type.label("key"), *columns)
        .outerjoin(types, types.c.plan_id == RecoveryPlan.id)
        .where(period)
        .subquery()
    )


def _median(values: list[float]) -> float | None:
    """Nearest rank: the value at rank ceil(n/2) of the sorted values."""
    if not values:
        return None
    return _round(sorted(values)[(len(values) + 1) // 2 - 1])


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


async def _controls(
    peer: PeerClient, tiers: dict[Any, str | None], *, start: dt.datetime, end: dt.datetime, exclude: list[uuid.UUID]
) -> tuple[dict[Any, dict[str, Any] | None], bool]:
    """The control of each group (asked once per tier) and whether customer-api answered every time."""
    answers: dict[str | None, dict[str, Any] | None] = {}
    for tier in dict.fromkeys(tiers.values()):
        answer = await repurchase_control(peer, start=start, end=end, tier=tier, exclude=exclude)
        if answer is None:  # down or refusing: asking again for the next tier would not help
            return dict.fromkeys(tiers), False
        rates = {window["days"]: window["rate"] for window in answer["windows"]}
        answers[tier] = {
            "customers": answer["customers"],
            "repurchase_30d_rate": rates.get(30),
            "repurchase_90d_rate": rates.get(90),
        }
    return {key: answers[tier] for key, tier in tiers.items()}, True


async def recovery_stats(
    session: AsyncSession, peer: PeerClient, *, start: dt.datetime, end: dt.datetime, group_by: str | None
) -> tuple[list[dict[str, Any]], bool]:
    """The figures of every group, most plans first, and whether the control could be computed."""
    plans = _grouped_plans(session, start, end, group_by)
    recovered = plans.c.outcome == "recovered"
    totals = await session.execute(
        select(
            plans.c.key,
            func.count().label("plans"),
            *plan_outcome_totals(plans),
            func.count(plans.c.customer_id.distinct()).filter(recovered).label("recovered_customers"),
            func.avg(plans.c.satisfaction_before).label("before"),
            func.count(plans.c.satisfaction_before).label("before_answers"),
        ).group_by(plans.c.key)
    )
    hours: dict[Any, list[float]] = defaultdict(list)
    for key, value in await session.execute(
        select(plans.c.key, plans.c.first_action_hours).where(plans.c.first_action_hours.is_not(None))
    ):
        hours[key].append(float(value))
    after = {
        key: (average, answers)
        for key, average, answers in await session.execute(
            select(plans.c.key, func.avg(FollowUp.satisfaction), func.count(FollowUp.satisfaction))
            .join(FollowUp, FollowUp.plan_id == plans.c.plan_id)
            .group_by(plans.c.key)
        )
    }
    done = RecoveryAction.status == "done"
    coupon = and_(done, RecoveryAction.type == "coupon")
    actions = {
        key: (cost, issued, redeemed)
        for key, cost, issued, redeemed in await session.execute(
            select(
                plans.c.key,
                func.sum(RecoveryAction.value).filter(done, RecoveryAction.type != "points"),
                func.count().filter(coupon),
                func.count().filter(coupon, RecoveryAction.coupon_redeemed_at.is_not(None)),
            )
            .join(RecoveryAction, RecoveryAction.plan_id == plans.c.plan_id)
            .group_by(plans.c.key)
        )
    }
    group_tiers: dict[Any, set[str | None]] = defaultdict(set)
    for key, tier in await session.execute(select(plans.c.key, plans.c.tier).distinct()):
        group_tiers[key].add(tier)
    complainants = list(await session.scalars(select(plans.c.customer_id).distinct().order_by(plans.c.customer_id)))
    control_tiers = {
        key: key if group_by == "tier" else (next(iter(tiers)) if len(tiers) == 1 else None)
        for key, tiers in group_tiers.items()
    }
    controls, control_available = await _controls(peer, control_tiers, start=start, end=end, exclude=complainants)

    groups = []
    for row in totals:
        after_average, after_answers = after.get(row.key, (None, 0))
        spent, issued, redeemed = actions.get(row.key, (None, 0, 0))
        cost = _money(Decimal(str(spent or 0)))
        groups.append(
            {
                "key": row.key,
                "plans": row.plans,
                "outcomes": {outcome: getattr(row, outcome) for outcome in OUTCOMES},
                **plan_outcome_rates(row),
                "time_to_first_action_hours": _median(hours[row.key]),
                "control": controls[row.key],
                "satisfaction_before_average": _round(row.before),
                "satisfaction_before_responses": row.before_answers,
                "satisfaction_after_average": _round(after_average),
                "satisfaction_after_responses": after_answers,
                "coupon_redemption_rate": _rate(redeemed, issued),
                "recovery_cost": cost,
                "cost_per_recovered_customer": (
                    _money(cost / row.recovered_customers) if row.recovered_customers else None
                ),
            }
        )
    return sorted(groups, key=lambda g: (-g["plans"], str(g["key"]))), control_available
