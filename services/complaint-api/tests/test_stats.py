"""Complaint statistics on a hand-made data set, against hand-computed values.

October 2026 (Shanghai times written as UTC+8), times in hours after intake:

    c1 delivery  first 1    resolved 3    never escalated (first contact)   satisfaction 5
    c2 delivery  first 2    resolved 10   escalated, reopened once, resolution breached   satisfaction 3
    c3 delivery  first 4    unresolved    escalated, first response breached
    c4 delivery  cancelled (counted in volume, left out of the rates)
    c5 price     first 0.5  resolved 0.5  never escalated                   satisfaction 4
    c6 price     taken in November: outside the period

Nearest rank: median = value at rank ceil(n/2), p90 = value at rank ceil(0.9·n).
delivery: volume 4, 3 counted; first contact 1/3; first response [1, 2, 4] → median 2, p90 4;
resolution [3, 10] → median 3, p90 10; breached 2/3; reopened 1/3; satisfaction (5+3)/2 = 4 from 2.
price: volume 1; first contact 1; 0.5 h everywhere; satisfaction 4 from 1.
overall: volume 5, 4 counted; first contact 2/4; first response [0.5, 1, 2, 4] → median 1, p90 4;
resolution [0.5, 3, 10] → median 3, p90 10; breached 2/4; reopened 1/4; satisfaction 12/3 = 4 from 3.

Recovery plans (one per complaint at most), with the evaluation's 30/90-day repurchase evidence (T, F, –):

    c1 recovered  T T
    c2 at_risk    F –    made on 3 November, after the period: it counts with its complaint
    c3 pending    – –    not judged yet: out of the recovery rate, and its evidence says nothing
    c4 lost       F F    made while c4 was escalated: left out with its cancelled complaint
    c5 no plan
    c6 recovered  T T    its complaint is outside the period

Recovery rate = recovered / (recovered + at_risk + lost); a repurchase rate = yes / (yes + no).
delivery: recovery 1/2; 30d 1/2; 90d 1/1. price: no plan, all null. overall: as delivery.
department none (c1, c5): recovery 1/1, 30d 1/1, 90d 1/1; 物流部 (c2, c3): recovery 0/1, 30d 0/1, 90d null.
customer-api is not running in this suite: none of it needs customer-api.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx

from complaint_api.complaints.models import Complaint
from complaint_api.recovery.models import RecoveryPlan

CST = dt.timezone(dt.timedelta(hours=8))
RATES = ("recovery_rate", "repurchase_30d_rate", "repurchase_90d_rate")


def _complaint(number: int, category: str, created: dt.datetime, **fields: Any) -> Complaint:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "number": f"C20261001-{number:04d}",
        "customer_id": uuid.uuid4(),
        "customer_snapshot": {},
        "snapshot_status": "ok",
        "channel": "phone",
        "category": category,
        "subject": "s",
        "description": "d",
        "severity": "medium",
        "priority": "normal",
        "status": "closed",
        "suggestions": [],
        "sla_pauses": [],
        "first_response_breached": False,
        "resolution_breached": False,
        "reopen_count": 0,
        "created_at": created,
        "updated_at": created,
    }
    return Complaint(**(values | fields))


def _plan(
    complaint: Complaint, outcome: str, repurchase: tuple[bool | None, bool | None], **fields: Any
) -> RecoveryPlan:
    created = complaint.created_at + dt.timedelta(days=1)
    evidence = {"repurchase_30d": repurchase[0], "repurchase_90d": repurchase[1]} if outcome != "pending" else {}
    values: dict[str, Any] = {
        "id": uuid.uuid4(), "complaint_id": complaint.id, "customer_id": complaint.customer_id,
        "status": "following_up", "triggers": ["manual"], "category": complaint.category,
        "severity": complaint.severity, "outcome": outcome, "evidence": evidence, "created_at": created,
        "updated_at": created,
    }  # fmt: skip
    return RecoveryPlan(**(values | fields))


async def test_statistics_equal_the_hand_computed_values(client: httpx.AsyncClient, app: Any) -> None:
    def at(day: int, hour: float) -> dt.datetime:
        return dt.datetime(2026, 10, day, tzinfo=CST) + dt.timedelta(hours=hour)

    rows = [
        _complaint(1, "delivery", at(1, 10), first_responded_at=at(1, 11), resolved_at=at(1, 13),
                   satisfaction={"score": 5}),
        _complaint(2, "delivery", at(2, 10), first_responded_at=at(2, 12), resolved_at=at(2, 20), department="物流部",
                   reopen_count=1, resolution_breached=True, satisfaction={"score": 3}),
        _complaint(3, "delivery", at(3, 10), first_responded_at=at(3, 14), department="物流部", status="escalated",
                   first_response_breached=True),
        _complaint(4, "delivery", at(4, 10), status="cancelled"),
        _complaint(5, "price", at(5, 9), first_responded_at=at(5, 9.5), resolved_at=at(5, 9.5),
                   satisfaction={"score": 4}),
        _complaint(6, "price", dt.datetime(2026, 11, 5, 9, tzinfo=CST), first_responded_at=at(5, 9.5)),
    ]  # fmt: skip
    plans = [
        _plan(rows[0], "recovered", (True, True)),
        _plan(rows[1], "at_risk", (False, None), created_at=dt.datetime(2026, 11, 3, 10, tzinfo=CST)),
        _plan(rows[2], "pending", (None, None), status="open"),
        _plan(rows[3], "lost", (False, False)),
        _plan(rows[5], "recovered", (True, True)),
    ]
    async with app.state.database.session_scope() as session:
        session.add_all(rows)
        await session.flush()
        session.add_all(plans)
    period = {"from": "2026-10-01T00:00:00+08:00", "to": "2026-11-01T00:00:00+08:00"}

    by_category = await client.get("/v1/stats/complaints", params={**period, "group_by": "category"})
    assert by_category.status_code == 200, by_category.text
    # The period is answered in UTC, as every time is, not in the offset the query wrote.
    assert (by_category.json()["start"], by_category.json()["end"]) == ("2026-09-30T16:00:00Z", "2026-10-31T16:00:00Z")
    groups = {g["key"]: g for g in by_category.json()["groups"]}
    assert groups["delivery"] == {
        "key": "delivery",
        "volume": 4,
        "first_contact_resolution_rate": 0.3333,
        "first_response_hours": {"median": 2.0, "p90": 4.0},
        "resolution_hours": {"median": 3.0, "p90": 10.0},
        "sla_breach_rate": 0.6667,
        "reopen_rate": 0.3333,
        "satisfaction_average": 4.0,
        "satisfaction_responses": 2,
        "recovery_rate": 0.5,
        "repurchase_30d_rate": 0.5,
        "repurchase_90d_rate": 1.0,
    }
    assert groups["price"]["volume"] == 1 and groups["price"]["first_contact_resolution_rate"] == 1.0
    assert groups["price"]["first_response_hours"] == {"median": 0.5, "p90": 0.5}
    assert groups["price"]["satisfaction_average"] == 4.0 and groups["price"]["satisfaction_responses"] == 1
    assert [groups["price"][rate] for rate in RATES] == [None, None, None]  # no plan

    overall = (await client.get("/v1/stats/complaints", params=period)).json()["groups"]
    assert overall == [
        {
            "key": "all",
            "volume": 5,
            "first_contact_resolution_rate": 0.5,
            "first_response_hours": {"median": 1.0, "p90": 4.0},
            "resolution_hours": {"median": 3.0, "p90": 10.0},
            "sla_breach_rate": 0.5,
            "reopen_rate": 0.25,
            "satisfaction_average": 4.0,
            "satisfaction_responses": 3,
            "recovery_rate": 0.5,
            "repurchase_30d_rate": 0.5,
            "repurchase_90d_rate": 1.0,
        }
    ]
    departments = (await client.get("/v1/stats/complaints", params={**period, "group_by": "department"})).json()
    assert {g["key"]: g["volume"] for g in departments["groups"]} == {None: 3, "物流部": 2}
    assert {g["key"]: [g[rate] for rate in RATES] for g in departments["groups"]} == {
        None: [1.0, 1.0, 1.0],
        "物流部": [0.0, 0.0, None],
    }


async def test_statistics_input_checks(client: httpx.AsyncClient) -> None:
    bad = {"from": "2026-11-01T00:00:00+08:00", "to": "2026-10-01T00:00:00+08:00"}
    assert (await client.get("/v1/stats/complaints", params=bad)).status_code == 422
    assert (await client.get("/v1/stats/complaints", params={"group_by": "weather"})).status_code == 422
    empty = (await client.get("/v1/stats/complaints")).json()
    assert empty["groups"] == []
