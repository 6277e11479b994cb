"""Service recovery inside complaint-api: plans by hand and by rule, actions, follow-ups, and the outcome
rules on hand-made facts. customer-api and recommend-api are down in this suite; the three services
together are tested in the root tests/ (test_recovery_end_to_end.py)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from conftest import auth
from test_complaints import step, take
from test_webhooks import Receiver, drive, subscribe

from complaint_api.recovery import service
from complaint_api.recovery.jobs import announce_due_actions, follow_up
from complaint_api.recovery.models import FollowUp, RecoveryPlan
from complaint_api.recovery.service import Facts, decide

CLOSED = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


async def close(client: httpx.AsyncClient, complaint: dict[str, Any]) -> dict[str, Any]:
    assert (await step(client, complaint, "answer")).status_code == 200
    closed = await step(client, complaint, "close")
    assert closed.status_code == 200, closed.text
    return closed.json()


async def plan_of(client: httpx.AsyncClient, complaint: dict[str, Any]) -> dict[str, Any] | None:
    found = (await client.get("/v1/recovery-plans", params={"customer_id": complaint["customer_id"]})).json()
    return next((p for p in found["items"] if p["complaint_id"] == complaint["id"]), None)


async def test_a_plan_by_hand_with_its_actions_and_follow_ups(client: httpx.AsyncClient) -> None:
    complaint = await take(client, severity="low", sku="6909876543210")
    body = {
        "owner_id": "staff-017", "controllable": True, "avoid_categories": ["乳品"],
        "actions": [{"type": "apology"}, {"type": "coupon", "value": "50.00", "coupon_code": "SORRY-50"},
                    {"type": "tailored_offer"}],
    }  # fmt: skip
    url = f"/v1/complaints/{complaint['id']}/recovery"
    made = await client.post(url, json=body, headers={"Idempotency-Key": "p1"})
    assert made.status_code == 201, made.text
    plan = made.json()
    assert plan["status"] == "open" and plan["triggers"] == ["manual"] and plan["outcome"] == "pending"
    assert [a["type"] for a in plan["actions"]] == ["apology", "coupon", "tailored_offer"]
    assert plan["actions"][1]["value"] == "50.00" and plan["actions"][2]["offer_status"] == "pending"
    assert plan["avoid_skus"] == ["6909876543210"] and plan["avoid_categories"] == ["乳品"]
    assert [f["offset_days"] for f in plan["follow_ups"]] == [3, 30, 90]
    assert all(f["due_at"] is None for f in plan["follow_ups"])  # not closed yet
    again = await client.post(
        f"/v1/complaints/{complaint['id']}/recovery", json=body, headers={"Idempotency-Key": "p1"}
    )
    assert again.status_code == 201 and again.json()["id"] == plan["id"]
    other = await client.post(url, json={})
    assert other.status_code == 200 and other.json()["id"] == plan["id"]

    url = f"/v1/recovery-plans/{plan['id']}/actions/{plan['actions'][1]['id']}/complete"
    done = await client.post(url, json={"note": "已发券"})
    assert done.status_code == 200 and done.json()["actions"][1]["status"] == "done"
    assert done.json()["first_action_at"]
    assert (await client.post(url, json={})).status_code == 409
    used = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).replace(microsecond=0)  # written in Shanghai time
    redeemed = await client.post(url, json={"redeemed_at": used.isoformat()})
    assert redeemed.status_code == 200, redeemed.text
    assert dt.datetime.fromisoformat(redeemed.json()["actions"][1]["coupon_redeemed_at"]) == used

    closed = await close(client, complaint)
    plan = (await client.get(f"/v1/recovery-plans/{plan['id']}")).json()
    closed_at = dt.datetime.fromisoformat(closed["closed_at"])
    assert plan["status"] == "following_up"
    assert [dt.datetime.fromisoformat(f["due_at"]) - closed_at for f in plan["follow_ups"]] == [
        dt.timedelta(days=3), dt.timedelta(days=30), dt.timedelta(days=90)
    ]  # fmt: skip
    scored = await client.post(
        f"/v1/recovery-plans/{plan['id']}/follow-ups/{plan['follow_ups'][0]['id']}", json={"satisfaction": 4}
    )
    assert scored.json()["follow_ups"][0]["satisfaction"] == 4
    # customer-api is down: nothing is decided, the outcome stays.
    evaluated = await client.post(f"/v1/recovery-plans/{plan['id']}/evaluate")
    assert evaluated.status_code == 503 and evaluated.headers["content-type"].startswith("application/problem+json")
    assert (await client.get(f"/v1/recovery-plans/{plan['id']}")).json()["outcome"] == "pending"
    timeline = (await client.get(f"/v1/complaints/{complaint['id']}/timeline")).json()["items"]
    assert {"recovery_plan_created", "recovery_action_done"} <= {e["type"] for e in timeline}


async def test_rules_make_plans_when_complaints_close_or_are_rated(client: httpx.AsyncClient) -> None:
    severe = await take(client, severity="high")
    await close(client, severe)
    plan = await plan_of(client, severe)
    assert plan and plan["triggers"] == ["severity"] and plan["status"] == "following_up"
    assert [a["type"] for a in plan["actions"]] == ["apology", "callback", "tailored_offer"]

    mild = await take(client, severity="low", customer_id=str(uuid.uuid4()))
    await close(client, mild)
    assert await plan_of(client, mild) is None
    happy = await client.post(f"/v1/complaints/{mild['id']}/satisfaction", json={"score": 4})
    assert happy.status_code == 200 and await plan_of(client, mild) is None

    unhappy = await take(client, severity="low", customer_id=str(uuid.uuid4()))
    await close(client, unhappy)
    await client.post(f"/v1/complaints/{unhappy['id']}/satisfaction", json={"score": 2})
    plan = await plan_of(client, unhappy)
    assert plan and plan["triggers"] == ["low_satisfaction"] and plan["satisfaction_before"] == 2
    assert [a["type"] for a in plan["actions"]] == ["apology", "tailored_offer"]


async def test_a_reopened_complaint_puts_its_plan_back_to_waiting(client: httpx.AsyncClient, app: Any) -> None:
    complaint = await take(client, severity="high")
    closed = await close(client, complaint)
    plan = await plan_of(client, complaint)
    assert plan and plan["status"] == "following_up" and plan["complaint_closed_at"] == closed["closed_at"]
    assert all(f["due_at"] for f in plan["follow_ups"])
    async with app.state.database.session_scope() as session:  # the customer bought again: evaluated recovered
        stored = await service.get_plan(session, uuid.UUID(plan["id"]), for_update=True)
        service.apply_outcome(session, stored, "recovered", {"as_of": closed["closed_at"]}, "test")
    assert (await step(client, complaint, "reopen")).status_code == 200
    plan = await plan_of(client, complaint)
    assert plan is not None
    assert (plan["status"], plan["outcome"], plan["complaint_closed_at"]) == ("open", "pending", None)
    assert all(f["due_at"] is None for f in plan["follow_ups"])
    for action in ("escalate", "resolution", "reply"):
        assert (await step(client, complaint, action)).status_code == 200
    again = (await step(client, complaint, "close")).json()
    plan = await plan_of(client, complaint)
    assert plan and plan["status"] == "following_up" and plan["complaint_closed_at"] == again["closed_at"]
    assert all(f["due_at"] for f in plan["follow_ups"])


async def test_a_second_complaint_within_90_days_is_a_double_deviation(client: httpx.AsyncClient) -> None:
    who = str(uuid.uuid4())
    first = await take(client, severity="low", customer_id=who)
    await close(client, first)
    second = await take(client, severity="low", customer_id=who)
    await close(client, second)
    assert await plan_of(client, first) is None
    plan = await plan_of(client, second)
    assert plan and plan["triggers"] == ["repeat_complaint"]
    assert plan["double_deviation"] is True and plan["prior_complaints_90d"] == 1


async def test_listing_filters_and_bad_input(client: httpx.AsyncClient) -> None:
    complaint = await take(client, severity="high")
    await close(client, complaint)
    plan = await plan_of(client, complaint)
    assert plan is not None
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=4)).isoformat()
    due = (await client.get("/v1/recovery-plans", params={"due_before": later})).json()["items"]
    assert plan["id"] in {p["id"] for p in due}
    none_due = (await client.get("/v1/recovery-plans", params={"due_before": "2000-01-01T00:00:00Z"})).json()
    assert none_due["items"] == []
    assert (await client.get("/v1/recovery-plans", params={"status": "lost"})).status_code == 422
    for due_before in ("0.5", "2026-01-01T00:00:00", "0001-01-01T00:00:00+00:01"):  # a number, naive, no UTC time
        assert (await client.get("/v1/recovery-plans", params={"due_before": due_before})).status_code == 422
    assert (await client.get(f"/v1/recovery-plans/{uuid.uuid4()}")).status_code == 404
    bad = await client.post(f"/v1/complaints/{complaint['id']}/recovery", json={"actions": [{"type": "hug"}]})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    flagged = await client.post(f"/v1/complaints/{complaint['id']}/recovery", json={"controllable": 1})
    assert flagged.status_code == 422 and "controllable" in flagged.text  # true or false, not 1
    assert (await client.post(f"/v1/complaints/{uuid.uuid4()}/recovery", json={})).status_code == 404
    assert (await client.get("/v1/recovery-plans", headers=auth("kb-editor"))).status_code == 403
    unknown_action = f"/v1/recovery-plans/{plan['id']}/actions/{uuid.uuid4()}/complete"
    assert (await client.post(unknown_action, json={})).status_code == 404


async def test_the_sweep_announces_due_actions(client: httpx.AsyncClient, app: Any) -> None:
    complaint = await take(client, severity="high")
    await close(client, complaint)
    assert await announce_due_actions(app.state.database, dt.datetime.now(dt.UTC)) == 0
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    assert await announce_due_actions(app.state.database, later) == 3
    assert await announce_due_actions(app.state.database, later) == 0  # once each
    timeline = (await client.get(f"/v1/complaints/{complaint['id']}/timeline")).json()["items"]
    assert sum(e["type"] == "recovery_action_due" for e in timeline) == 3


# --- the outcome rules, on hand-made facts -----------------------------------------------------------


def _plan(**fields: Any) -> RecoveryPlan:
    plan = RecoveryPlan(**{"complaint_closed_at": CLOSED, "double_deviation": False, "outcome": "pending", **fields})
    plan.follow_ups = [FollowUp(offset_days=d, status="pending") for d in (3, 30, 90)]
    return plan


def _facts(days: float, orders: list[int] = (), **fields: Any) -> Facts:  # type: ignore[assignment]
    """Facts `days` after closing, with orders placed that many days after closing."""
    placed = [
        {"order_id": f"O-{d}", "purchased_at": (CLOSED + dt.timedelta(days=d)).isoformat(), "total": "10.00"}
        for d in orders
    ]
    values: dict[str, Any] = {"repeat_complaint": None, "follow_up_satisfaction": None, "coupon_redeemed": None}
    return Facts(as_of=CLOSED + dt.timedelta(days=days), orders=placed, **{**values, **fields})


@pytest.mark.parametrize(
    ("days", "orders", "extra", "outcome", "repurchase_30d", "repurchase_90d"),
    [
        (2, [], {}, "pending", None, None),
        (10, [5], {}, "recovered", True, True),
        (31, [], {}, "at_risk", False, None),
        (60, [45], {}, "recovered", False, True),
        (91, [], {}, "lost", False, False),
        (95, [92], {}, "recovered", False, False),  # bought, but after the 90-day window
        (10, [5], {"follow_up_satisfaction": 2}, "at_risk", True, True),
        (10, [], {"follow_up_satisfaction": 1}, "at_risk", None, None),
    ],
)
def test_outcomes_follow_from_facts(
    days: float, orders: list[int], extra: dict[str, Any], outcome: str, repurchase_30d: Any, repurchase_90d: Any
) -> None:
    found, evidence = decide(_plan(), _facts(days, orders, **extra))
    assert found == outcome
    assert evidence["repurchase_30d"] is repurchase_30d and evidence["repurchase_90d"] is repurchase_90d
    if orders:
        assert evidence["first_purchase"]["order_id"] == f"O-{orders[0]}"


def test_a_later_complaint_puts_the_customer_at_risk() -> None:
    from complaint_api.complaints.models import Complaint

    later = Complaint(id=uuid.uuid4(), number="C20260610-0001", created_at=CLOSED + dt.timedelta(days=9))
    outcome, evidence = decide(_plan(), _facts(12, [5], repeat_complaint=later))
    assert outcome == "at_risk" and evidence["double_deviation"] is True
    assert evidence["repeat_complaint"]["number"] == "C20260610-0001"
    assert decide(_plan(complaint_closed_at=None), _facts(12))[0] == "pending"


async def test_recovery_events_reach_webhooks(client: httpx.AsyncClient, app: Any) -> None:
    receiver = Receiver()
    await receiver.start()
    try:
        await subscribe(client, receiver.url(), ["recovery.plan_created", "recovery.action_due"])
        complaint = await take(client, severity="high")
        await close(client, complaint)
        await announce_due_actions(app.state.database, dt.datetime.now(dt.UTC) + dt.timedelta(days=3))
        await drive(app, lambda: len(receiver.accepted()) >= 4)
        got = [r.json for r in receiver.accepted()]
    finally:
        await receiver.stop()
    assert [g["event"] for g in got] == ["recovery.plan_created"] + ["recovery.action_due"] * 3
    assert got[0]["complaint"]["id"] == complaint["id"] and got[0]["data"]["triggers"] == ["severity"]
    assert {g["data"]["type"] for g in got[1:]} == {"apology", "callback", "tailored_offer"}


async def test_due_follow_ups_wait_while_customer_api_is_down(client: httpx.AsyncClient, app: Any) -> None:
    complaint = await take(client, severity="high")
    await close(client, complaint)
    plan = await plan_of(client, complaint)
    assert plan is not None
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=31)
    assert await follow_up(app.state.database, app.state.customer_api, later) == 0
    kept = (await client.get(f"/v1/recovery-plans/{plan['id']}")).json()
    assert kept["outcome"] == "pending" and kept["status"] == "following_up"
    assert [f["status"] for f in kept["follow_ups"]] == ["pending", "pending", "pending"]
    async with app.state.database.session_scope(read_only=True) as session:
        stored = await session.get(RecoveryPlan, uuid.UUID(plan["id"]))
        assert stored is not None and stored.evaluation_error
