"""Service-recovery statistics on a hand-made data set, against hand-computed values.

October 2026 (Shanghai times written as UTC+8). Plans, with hours from plan to first action done, the
evaluation's 30/90-day repurchase evidence (T, F, – for null), satisfaction before and at follow-ups,
and actions (value; ✓ coupon redeemed):

    P1 U1 delivery gold    cs-1  recovered  2 h   T T   before 2  after 4, 5
       apology done, coupon done 50.00 ✓, points done 200
    P2 U2 delivery gold    cs-1  at_risk    6 h   F –   before 1  after 3, (asked, no answer)
       refund done 120.50, coupon done 30.00, gift cancelled 80.00
    P3 U3 quality  regular cs-2  lost       1 h   F F   before –  after 2
       apology done, callback done
    P4 U1 quality  gold    cs-2  recovered  10 h  T T   before 3
       coupon done 20.00 ✓, tailored_offer done
    P5 U4 delivery regular –     pending    –     – –   before 4  after (pending)
       visit cancelled
    P6 U5 delivery –       cs-1  recovered  4 h   T –   before 2  after 5
       gift done 80.03, points done 500
    P7 U6 delivery gold    cs-1  recovered, taken in November: outside the period

Overall: 6 plans; pending 1, recovered 3, at_risk 1, lost 1 → recovery 3/5 = 0.6; hours [1, 2, 4, 6, 10]
→ median (rank ceil(5/2) = 3) 4; repurchase 30d 3/5 = 0.6, 90d 2/3 = 0.6667; before 12/5 = 2.4 from 5;
after (4+5+3+2+5)/5 = 3.8 from 5; coupons redeemed 2 of 3 issued = 0.6667; cost 50 + 120.50 + 30 + 20 +
80.03 = 300.53 (points and the cancelled gift left out); recovered customers U1, U5 → 300.53 / 2 = 150.265
→ 150.27 (half up).

Category — delivery P1 P2 P5 P6: 4 plans; recovery 2/3; hours [2, 4, 6] → 4; 30d 2/3, 90d 1/1; before
9/4 = 2.25; after 17/4 = 4.25; coupons 1/2; cost 280.53, / 2 customers = 140.265 → 140.27.
quality P3 P4: 2 plans; recovery 1/2; hours [1, 10] → 1; 30d 1/2, 90d 1/2; before 3 from 1; after 2 from
1; coupons 1/1; cost 20.00, / 1 = 20.00.

Tier — gold P1 P2 P4: 3 plans; recovery 2/3; hours [2, 6, 10] → 6; 30d 2/3, 90d 2/2; before 6/3 = 2;
after 12/3 = 4; coupons 2/3; cost 220.50 / 1 (U1 twice) = 220.50.
regular P3 P5: recovery 0/1; hours [1] → 1; 30d 0/1, 90d 0/1; before 4 from 1; after 2 from 1; no coupon;
cost 0.00, nobody recovered. No tier P6: recovery 1/1; hours 4; 30d 1/1, 90d unknown; before 2; after 5;
cost 80.03 / 1.

Owner — cs-1 P1 P2 P6: recovery 2/3; hours [2, 4, 6] → 4; 30d 2/3, 90d 1/1; before 5/3 = 1.67; after
17/4 = 4.25; coupons 1/2; cost 280.53 / 2 = 140.27. cs-2 P3 P4: as quality. none P5: pending only.

Action type (types of actions not cancelled) — coupon P1 P2 P4: as gold. apology P1 P3: recovery 1/2;
hours [1, 2] → 1; 30d 1/2, 90d 1/2; before 2 from 1; after 11/3 = 3.67 from 3; coupons 1/1; cost 50.00 / 1.
points P1 P6: recovery 2/2; hours [2, 4] → 2; 30d 2/2, 90d 1/1; before 2 from 2; after 14/3 = 4.67 from 3;
coupons 1/1; cost 130.03 / 2 = 65.015 → 65.02. refund P2, callback P3, tailored_offer P4, gift P6 (P2's
cancelled gift does not count) alone; P5, whose only action was cancelled, falls under null.

customer-api is not running in this suite: every control is null and `control_available` false. The
control's requests are checked against a stand-in for customer-api: complainants U1–U5 excluded (U6
complained outside the period), one request per tier needed — by tier: gold, regular and every tier (for
P6, which has none); otherwise every tier for mixed groups, regular for the owner-less group (P5 alone).
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import httpx
from conftest import auth

from complaint_api.complaints.models import Complaint
from complaint_api.recovery.models import FollowUp, RecoveryAction, RecoveryPlan

CST = dt.timezone(dt.timedelta(hours=8))
URL = "/v1/stats/recovery"
PERIOD = {"from": "2026-10-01T00:00:00+08:00", "to": "2026-11-01T00:00:00+08:00"}
U1, U2, U3, U4, U5, U6 = (uuid.uuid4() for _ in range(6))


def _complaint(number: int, customer_id: uuid.UUID, category: str, created: dt.datetime) -> Complaint:
    return Complaint(
        id=uuid.uuid4(), number=f"C20261001-{number:04d}", customer_id=customer_id, customer_snapshot={},
        snapshot_status="ok", channel="phone", category=category, subject="s", description="d", severity="high",
        priority="normal", status="closed", suggestions=[], sla_pauses=[], created_at=created, updated_at=created,
    )  # fmt: skip


def _action(position: int, type_: str, status: str, value: str | None = None, **fields: Any) -> RecoveryAction:
    return RecoveryAction(
        id=uuid.uuid4(), position=position, type=type_, status=status,
        value=None if value is None else Decimal(value), **fields,
    )  # fmt: skip


def _follow_up(offset_days: int, satisfaction: int | None, status: str = "done") -> FollowUp:
    return FollowUp(id=uuid.uuid4(), offset_days=offset_days, status=status, satisfaction=satisfaction)


async def _load(app: Any) -> None:
    def at(day: int, hour: float = 10) -> dt.datetime:
        return dt.datetime(2026, 10, day, tzinfo=CST) + dt.timedelta(hours=hour)

    def evidence(r30: bool | None, r90: bool | None) -> dict[str, Any]:
        return {"repurchase_30d": r30, "repurchase_90d": r90, "first_purchase_at": None}

    redeemed = at(20)
    plans = [  # (customer, category, tier, owner, outcome, created, hours to first action, evidence, before)
        (U1, "delivery", "gold", "cs-1", "recovered", at(1), 2, evidence(True, True), 2,
         [_action(1, "apology", "done"), _action(2, "coupon", "done", "50.00", coupon_redeemed_at=redeemed),
          _action(3, "points", "done", "200")],
         [_follow_up(7, 4), _follow_up(30, 5)]),
        (U2, "delivery", "gold", "cs-1", "at_risk", at(2), 6, evidence(False, None), 1,
         [_action(1, "refund", "done", "120.50"), _action(2, "coupon", "done", "30.00"),
          _action(3, "gift", "cancelled", "80.00")],
         [_follow_up(7, 3), _follow_up(30, None)]),
        (U3, "quality", "regular", "cs-2", "lost", at(3), 1, evidence(False, False), None,
         [_action(1, "apology", "done"), _action(2, "callback", "done")],
         [_follow_up(7, 2)]),
        (U1, "quality", "gold", "cs-2", "recovered", at(4), 10, evidence(True, True), 3,
         [_action(1, "coupon", "done", "20.00", coupon_redeemed_at=redeemed), _action(2, "tailored_offer", "done")],
         []),
        (U4, "delivery", "regular", None, "pending", at(5), None, {}, 4,
         [_action(1, "visit", "cancelled")],
         [_follow_up(7, None, status="pending")]),
        (U5, "delivery", None, "cs-1", "recovered", at(6), 4, evidence(True, None), 2,
         [_action(1, "gift", "done", "80.03"), _action(2, "points", "done", "500")],
         [_follow_up(7, 5)]),
        (U6, "delivery", "gold", "cs-1", "recovered", dt.datetime(2026, 11, 5, 10, tzinfo=CST), 1,
         evidence(True, True), 1,
         [_action(1, "coupon", "done", "999.00", coupon_redeemed_at=redeemed)],
         [_follow_up(7, 1)]),
    ]  # fmt: skip
    async with app.state.database.session_scope() as session:
        complaints = [_complaint(i, p[0], p[1], p[5]) for i, p in enumerate(plans, start=1)]
        session.add_all(complaints)
        await session.flush()
        for complaint, plan in zip(complaints, plans, strict=True):
            customer, category, tier, owner, outcome, created, hours, facts, before, actions, follow_ups = plan
            session.add(
                RecoveryPlan(
                    id=uuid.uuid4(), complaint_id=complaint.id, customer_id=customer, owner_id=owner,
                    status="closed" if outcome != "pending" else "open", triggers=["manual"], category=category,
                    severity="high", tier=tier, satisfaction_before=before, outcome=outcome, evidence=facts,
                    first_action_at=None if hours is None else created + dt.timedelta(hours=hours),
                    created_at=created, updated_at=created, actions=actions, follow_ups=follow_ups,
                )
            )  # fmt: skip


def _figures(
    plans: int,
    outcomes: tuple[int, int, int, int],
    recovery: float | None,
    hours: float | None,
    repurchase: tuple[float | None, float | None],
    before: tuple[float | None, int],
    after: tuple[float | None, int],
    coupons: float | None,
    cost: str,
    per_customer: str | None,
) -> dict[str, Any]:
    """One group as the API answers it; outcomes are (pending, recovered, at_risk, lost)."""
    return {
        "plans": plans,
        "outcomes": dict(zip(("pending", "recovered", "at_risk", "lost"), outcomes, strict=True)),
        "recovery_rate": recovery,
        "time_to_first_action_hours": hours,
        "repurchase_30d_rate": repurchase[0],
        "repurchase_90d_rate": repurchase[1],
        "control": None,
        "satisfaction_before_average": before[0],
        "satisfaction_before_responses": before[1],
        "satisfaction_after_average": after[0],
        "satisfaction_after_responses": after[1],
        "coupon_redemption_rate": coupons,
        "recovery_cost": cost,
        "cost_per_recovered_customer": per_customer,
    }


GOLD = _figures(3, (0, 2, 1, 0), 0.6667, 6.0, (0.6667, 1.0), (2.0, 3), (4.0, 3), 0.6667, "220.50", "220.50")
QUALITY = _figures(2, (0, 1, 0, 1), 0.5, 1.0, (0.5, 0.5), (3.0, 1), (2.0, 1), 1.0, "20.00", "20.00")
PENDING_ONLY = _figures(1, (1, 0, 0, 0), None, None, (None, None), (4.0, 1), (None, 0), None, "0.00", None)
EXPECTED: dict[str | None, dict[str | None, dict[str, Any]]] = {
    None: {
        "all": _figures(6, (1, 3, 1, 1), 0.6, 4.0, (0.6, 0.6667), (2.4, 5), (3.8, 5), 0.6667, "300.53", "150.27"),
    },
    "category": {
        "delivery": _figures(
            4, (1, 2, 1, 0), 0.6667, 4.0, (0.6667, 1.0), (2.25, 4), (4.25, 4), 0.5, "280.53", "140.27"
        ),
        "quality": QUALITY,
    },
    "tier": {
        "gold": GOLD,
        "regular": _figures(2, (1, 0, 0, 1), 0.0, 1.0, (0.0, 0.0), (4.0, 1), (2.0, 1), None, "0.00", None),
        None: _figures(1, (0, 1, 0, 0), 1.0, 4.0, (1.0, None), (2.0, 1), (5.0, 1), None, "80.03", "80.03"),
    },
    "owner": {
        "cs-1": _figures(3, (0, 2, 1, 0), 0.6667, 4.0, (0.6667, 1.0), (1.67, 3), (4.25, 4), 0.5, "280.53", "140.27"),
        "cs-2": QUALITY,
        None: PENDING_ONLY,
    },
    "action_type": {
        "coupon": GOLD,
        "apology": _figures(2, (0, 1, 0, 1), 0.5, 1.0, (0.5, 0.5), (2.0, 1), (3.67, 3), 1.0, "50.00", "50.00"),
        "points": _figures(2, (0, 2, 0, 0), 1.0, 2.0, (1.0, 1.0), (2.0, 2), (4.67, 3), 1.0, "130.03", "65.02"),
        "refund": _figures(1, (0, 0, 1, 0), 0.0, 6.0, (0.0, None), (1.0, 1), (3.0, 1), 0.0, "150.50", None),
        "callback": _figures(1, (0, 0, 0, 1), 0.0, 1.0, (0.0, 0.0), (None, 0), (2.0, 1), None, "0.00", None),
        "tailored_offer": _figures(1, (0, 1, 0, 0), 1.0, 10.0, (1.0, 1.0), (3.0, 1), (None, 0), 1.0, "20.00", "20.00"),
        "gift": _figures(1, (0, 1, 0, 0), 1.0, 4.0, (1.0, None), (2.0, 1), (5.0, 1), None, "80.03", "80.03"),
        None: PENDING_ONLY,
    },
}


async def test_recovery_statistics_equal_the_hand_computed_values(client: httpx.AsyncClient, app: Any) -> None:
    await _load(app)
    for group_by, expected in EXPECTED.items():
        params = {**PERIOD, **({"group_by": group_by} if group_by else {})}
        response = await client.get(URL, params=params, headers=auth("reader"))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["group_by"] == group_by and body["control_available"] is False
        assert (body["start"], body["end"]) == ("2026-09-30T16:00:00Z", "2026-10-31T16:00:00Z")  # in UTC
        groups = {g.pop("key"): g for g in body["groups"]}
        assert groups == expected, group_by
        # Most plans first, ties by key.
        assert [g["plans"] for g in body["groups"]] == sorted((g["plans"] for g in body["groups"]), reverse=True)


async def test_complaint_statistics_give_the_same_recovery_and_repurchase_rates(
    client: httpx.AsyncClient, app: Any
) -> None:
    # Here each complaint is taken when its plan is made, with the plan's category, so over the same period
    # /v1/stats/complaints sees the same plans per category as /v1/stats/recovery.
    await _load(app)
    rates = ("recovery_rate", "repurchase_30d_rate", "repurchase_90d_rate")
    for group_by in (None, "category"):
        params = {**PERIOD, **({"group_by": group_by} if group_by else {})}
        response = await client.get("/v1/stats/complaints", params=params, headers=auth("reader"))
        assert response.status_code == 200, response.text
        got = {g["key"]: {rate: g[rate] for rate in rates} for g in response.json()["groups"]}
        assert got == {key: {rate: g[rate] for rate in rates} for key, g in EXPECTED[group_by].items()}, group_by


async def test_recovery_statistics_input_checks(client: httpx.AsyncClient) -> None:
    backwards = {"from": PERIOD["to"], "to": PERIOD["from"]}
    for params in (backwards, {"from": PERIOD["from"], "to": PERIOD["from"]}, {"group_by": "weather"},
                   {"group_by": "assignee"}, {"from": "yesterday"}, {"from": "2026-10-01T00:00:00"},
                   # no UTC time (it would overflow), or out of the range a request may carry
                   {"from": "0001-01-01T00:00:00+00:01"}, {"to": "0001-01-02T00:00:00Z"},
                   {"from": "9999-12-31T00:00:00Z", "to": "9999-12-31T23:59:59-23:59"},
                   {"to": "0.5"}, {"from": "1700000000"}):  # numbers are not seconds since 1970  # fmt: skip
        response = await client.get(URL, params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["status"] == 422
    assert (await client.get(URL, headers=auth("kb-editor"))).status_code == 403
    empty = await client.get(URL)
    assert empty.status_code == 200
    # No plan, no control to ask for: nothing is missing.
    assert empty.json()["groups"] == [] and empty.json()["control_available"] is True
