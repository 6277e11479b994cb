"""A recovery plan over its complaint's life, over HTTP: outcomes that come back, follow-up scores sent again or
corrected, a complaint cancelled or reopened, a background pass that meets a failing plan, whole numbers and
redemption times, versions and If-Match. customer-api is a stand-in here (purchases and the contact history,
which refuses other content under a key it has, as customer-api does); time passes by moving stored times."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from test_complaints import step, take
from test_recovery import close, plan_of

from complaint_api.clients.customer_api import purchases_between, record_contact
from complaint_api.complaints.models import Complaint
from complaint_api.feeds.service import apply_events
from complaint_api.recovery import jobs
from complaint_api.recovery.jobs import announce_due_actions, fill_offers, follow_up, send_contacts
from complaint_api.recovery.models import ContactRecord, RecoveryPlan
from crm_kit.http import PeerClient, PeerConfig

DAY = dt.timedelta(days=1)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class CustomerApi:
    """customer-api as complaint-api meets it: a customer's purchases, and a contact history that keeps one entry
    per (source, external_id): the same content again answers 200, other content under the key 409."""

    def __init__(self) -> None:
        self.orders: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.entries: dict[tuple[str, str], dict[str, Any]] = {}
        self.refused: list[dict[str, Any]] = []

    def buy(self, customer_id: str, when: dt.datetime) -> dict[str, Any]:
        order = {"order_id": f"O-{uuid.uuid4().hex[:10]}", "purchased_at": when.isoformat(), "total": "10.00"}
        self.orders[customer_id].append(order)
        return order

    def history(self, customer_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        entries = [e for e in self.entries.values() if e["customer_id"] == customer_id]
        return [e for e in entries if kind is None or e["kind"] == kind]

    def handle(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.strip("/").split("/")
        if len(parts) == 4 and parts[:2] == ["v1", "customers"]:
            customer_id, what = parts[2], parts[3]
            if what == "purchases" and request.method == "GET":
                since = dt.datetime.fromisoformat(request.url.params["since"])
                until = dt.datetime.fromisoformat(request.url.params["until"])
                items = [
                    o for o in self.orders[customer_id]
                    if since <= dt.datetime.fromisoformat(o["purchased_at"]) <= until
                ]  # fmt: skip
                return httpx.Response(200, json={"items": items, "next_cursor": None})
            if what == "interactions" and request.method == "POST":
                body = {**json.loads(request.content), "customer_id": customer_id}
                key = (body["source"], body["external_id"])
                stored = self.entries.setdefault(key, body)
                if stored is body:
                    return httpx.Response(201, json=body)
                if stored == body:
                    return httpx.Response(200, json=body)
                self.refused.append(body)
                return httpx.Response(409, json={"detail": "already recorded with other content"})
        return httpx.Response(503)  # anything else: down, as in the rest of this suite


@pytest.fixture
async def customer_api(app: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[CustomerApi]:
    """The stand-in answers for customer-api while the test runs (never opening its breaker: the background
    sweep meets it too, and finds it down for everything else)."""
    fake = CustomerApi()
    config = PeerConfig(base_url="http://customer-api.test", retries=0, breaker_failures=1_000_000)
    async with PeerClient("customer-api", config, transport=httpx.MockTransport(fake.handle)) as peer:
        monkeypatch.setitem(app.state._state, "customer_api", peer)  # app.state keeps its values in _state
        yield fake


async def _closed_with_plan(client: httpx.AsyncClient, who: str | None = None) -> tuple[dict[str, Any], ...]:
    """A severe complaint (a recovery rule) of a new customer, closed: the complaint and its plan."""
    complaint = await take(client, severity="high", customer_id=who or str(uuid.uuid4()))
    closed = await close(client, complaint)
    plan = await plan_of(client, complaint)
    assert plan is not None and plan["status"] == "following_up"
    return closed, plan


async def _evaluate(client: httpx.AsyncClient, plan: dict[str, Any], **headers: str) -> httpx.Response:
    return await client.post(f"/v1/recovery-plans/{plan['id']}/evaluate", headers=headers)


async def _outcome(client: httpx.AsyncClient, plan: dict[str, Any]) -> str:
    evaluated = await _evaluate(client, plan)
    assert evaluated.status_code == 200, evaluated.text
    return str(evaluated.json()["outcome"])


async def _contacts(app: Any, customer_id: str) -> list[ContactRecord]:
    async with app.state.database.session_scope(read_only=True) as session:
        query = select(ContactRecord).where(ContactRecord.customer_id == uuid.UUID(customer_id))
        return list((await session.execute(query.order_by(ContactRecord.created_at))).scalars())


async def _deliver(app: Any) -> None:
    """The contact sweep, until nothing is owed; every entry must be taken (none refused)."""
    while await send_contacts(app.state.database, app.state.customer_api, _now() + 365 * DAY):
        pass


async def _shift(app: Any, complaint_id: str, days: float) -> None:
    """Move a complaint's times and its plan's closing and follow-ups `days` back, as if they had passed."""
    back = dt.timedelta(days=days)
    async with app.state.database.session_scope() as session:
        complaint = await session.get(Complaint, uuid.UUID(complaint_id))
        assert complaint is not None
        for field in ("created_at", "closed_at", "resolved_at", "first_responded_at"):
            if getattr(complaint, field) is not None:
                setattr(complaint, field, getattr(complaint, field) - back)
        plan = (
            await session.execute(select(RecoveryPlan).where(RecoveryPlan.complaint_id == complaint.id))
        ).scalar_one()
        plan.created_at -= back
        if plan.complaint_closed_at is not None:
            plan.complaint_closed_at -= back
        for f in plan.follow_ups:
            if f.due_at is not None:
                f.due_at -= back


# --- 1. an outcome reached again ----------------------------------------------------------------------


async def test_an_outcome_the_plan_had_before_can_be_reached_again(
    client: httpx.AsyncClient, app: Any, customer_api: CustomerApi
) -> None:
    who = str(uuid.uuid4())
    closed, plan = await _closed_with_plan(client, who)
    customer_api.buy(who, dt.datetime.fromisoformat(closed["closed_at"]) + dt.timedelta(milliseconds=1))
    assert await _outcome(client, plan) == "recovered"
    second = await take(client, severity="low", customer_id=who)  # a later complaint: at risk
    assert await _outcome(client, plan) == "at_risk"
    assert (await step(client, second, "cancel")).status_code == 200  # it was invalid: recovered again
    assert await _outcome(client, plan) == "recovered"

    # The same through the background pass, which used to fail on this plan at every pass.
    third = await take(client, severity="low", customer_id=who)
    assert await _outcome(client, plan) == "at_risk"
    assert (await step(client, third, "cancel")).status_code == 200
    assert await follow_up(app.state.database, app.state.customer_api, _now() + 4 * DAY) == 1
    found = (await client.get(f"/v1/recovery-plans/{plan['id']}")).json()
    assert found["outcome"] == "recovered" and found["follow_ups"][0]["outcome"] == "recovered"

    timeline = (await client.get(f"/v1/complaints/{plan['complaint_id']}/timeline", params={"limit": 100})).json()
    changes = [e["data"]["to"] for e in timeline["items"] if e["type"] == "recovery_outcome_changed"]
    assert changes == ["recovered", "at_risk", "recovered", "at_risk", "recovered"]
    # Every change is its own entry in the contact history; customer-api takes each once.
    await _deliver(app)
    await _deliver(app)
    notes = [e["subject"].removeprefix("服务复原结果：") for e in customer_api.history(who, "note")]
    assert notes == ["已挽回", "有流失风险", "已挽回", "有流失风险", "已挽回"]
    assert customer_api.refused == [] and {r.status for r in await _contacts(app, who)} == {"sent"}


async def test_a_better_score_later_and_a_second_reopen_are_evaluated_again(
    client: httpx.AsyncClient, app: Any, customer_api: CustomerApi
) -> None:
    who = str(uuid.uuid4())
    closed, plan = await _closed_with_plan(client, who)
    customer_api.buy(who, dt.datetime.fromisoformat(closed["closed_at"]) + dt.timedelta(milliseconds=1))
    assert await _outcome(client, plan) == "recovered"
    url = f"/v1/recovery-plans/{plan['id']}/follow-ups"
    assert (await client.post(f"{url}/{plan['follow_ups'][0]['id']}", json={"satisfaction": 1})).status_code == 200
    assert await _outcome(client, plan) == "at_risk"
    assert (await client.post(f"{url}/{plan['follow_ups'][1]['id']}", json={"satisfaction": 5})).status_code == 200
    assert await _outcome(client, plan) == "recovered"

    complaint = {"id": plan["complaint_id"]}
    for _ in range(2):  # each reopen puts the outcome back to pending: twice is a second pending
        assert (await step(client, complaint, "reopen")).status_code == 200
        assert (await _evaluate(client, plan)).json()["outcome"] == "pending"
        for action in ("escalate", "resolution", "reply", "close"):
            assert (await step(client, complaint, action)).status_code == 200, action
        closed_at = (await client.get(f"/v1/complaints/{complaint['id']}")).json()["closed_at"]
        customer_api.buy(who, dt.datetime.fromisoformat(closed_at) + dt.timedelta(milliseconds=1))
        assert await _outcome(client, plan) == "recovered"
    await _deliver(app)
    assert customer_api.refused == [] and {r.status for r in await _contacts(app, who)} == {"sent"}


async def test_the_follow_up_pass_goes_on_past_a_plan_that_fails(
    client: httpx.AsyncClient, app: Any, customer_api: CustomerApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    plans = [(await _closed_with_plan(client))[1] for _ in range(3)]  # made in this order: a, b, c
    first = uuid.UUID(plans[0]["id"])
    broken = {first}
    evaluate = jobs.apply_evaluation

    async def failing(session: Any, plan: RecoveryPlan, *args: Any, **kwargs: Any) -> bool:
        if plan.id in broken:
            raise IntegrityError("INSERT INTO contact_records", {}, Exception("uq_contact_records_external_id"))
        return await evaluate(session, plan, *args, **kwargs)

    monkeypatch.setattr(jobs, "apply_evaluation", failing)
    later = _now() + 4 * DAY

    async def pass_once() -> int:
        return await follow_up(app.state.database, app.state.customer_api, later)

    monkeypatch.setattr(jobs, "BATCH", 1)  # one plan a pass: the failing one must not come first every time
    assert [await pass_once() for _ in range(4)] == [0, 1, 1, 0]  # a fails, b, c, then a again
    states = [(await client.get(f"/v1/recovery-plans/{p['id']}")).json() for p in plans]
    assert [s["follow_ups"][0]["status"] for s in states] == ["pending", "done", "done"]
    async with app.state.database.session_scope(read_only=True) as session:
        stored = await session.get(RecoveryPlan, first)
        assert stored is not None and stored.evaluation_error
        assert stored.evaluation_error.startswith("IntegrityError")

    monkeypatch.setattr(jobs, "BATCH", 20)
    more = [(await _closed_with_plan(client))[1] for _ in range(2)]
    broken.add(uuid.UUID(more[0]["id"]))
    assert await pass_once() == 1  # the first plan fails (taken first now), and so does the next: the pass goes on
    assert (await client.get(f"/v1/recovery-plans/{more[1]['id']}")).json()["follow_ups"][0]["status"] == "done"
    assert (await client.get(f"/v1/recovery-plans/{more[0]['id']}")).json()["follow_ups"][0]["status"] == "pending"


# --- 2. a follow-up score sent twice -----------------------------------------------------------------


async def test_a_follow_up_score_sent_again_replays_and_a_changed_one_is_stored(
    client: httpx.AsyncClient, app: Any, customer_api: CustomerApi
) -> None:
    who = str(uuid.uuid4())
    _, plan = await _closed_with_plan(client, who)
    url = f"/v1/recovery-plans/{plan['id']}/follow-ups/{plan['follow_ups'][0]['id']}"
    first = await client.post(url, json={"satisfaction": 4, "note": "满意"})
    assert first.status_code == 200, first.text
    for headers in ({}, {"If-Match": f'"{plan["version"]}"'}):  # a retry, even with the ETag it was sent with
        again = await client.post(url, json={"satisfaction": 4}, headers=headers)
        assert again.status_code == 200, again.text
        assert again.headers["etag"] == first.headers["etag"] and again.json() == first.json()
    assert again.json()["follow_ups"][0]["satisfaction"] == 4
    assert len([r for r in await _contacts(app, who) if r.body["kind"] == "survey"]) == 1

    stale = await client.post(url, json={"satisfaction": 2}, headers={"If-Match": f'"{plan["version"]}"'})
    assert stale.status_code == 412 and stale.headers["content-type"].startswith("application/problem+json")
    changed = await client.post(url, json={"satisfaction": 2}, headers={"If-Match": first.headers["etag"]})
    assert changed.status_code == 200, changed.text
    assert changed.json()["follow_ups"][0]["satisfaction"] == 2 and changed.headers["etag"] != first.headers["etag"]
    got = (await client.get(f"/v1/recovery-plans/{plan['id']}")).json()
    assert got["follow_ups"][0]["satisfaction"] == 2 and got["version"] == changed.json()["version"]

    await _deliver(app)
    surveys = customer_api.history(who, "survey")
    assert [(s["score"], s["subject"]) for s in surveys] == [
        (4, "服务复原回访（3 天）"), (2, "服务复原回访（3 天）：评分更正")  # the first answer stays: append-only
    ]  # fmt: skip
    assert customer_api.refused == [] and {r.status for r in await _contacts(app, who)} == {"sent"}


# --- 3. a cancelled complaint ------------------------------------------------------------------------


class _Offers:
    """recommend-api, counting the calls it gets."""

    def __init__(self) -> None:
        self.calls = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return httpx.Response(200, json={"items": []})


async def test_cancelling_a_complaint_cancels_its_plan(client: httpx.AsyncClient, app: Any) -> None:
    complaint = await take(client, severity="low", customer_id=str(uuid.uuid4()))
    past = (_now() - DAY).isoformat()
    body = {"actions": [{"type": "apology", "due_at": past}, {"type": "coupon", "value": "50.00", "due_at": past},
                        {"type": "tailored_offer"}]}  # fmt: skip
    plan = (await client.post(f"/v1/complaints/{complaint['id']}/recovery", json=body)).json()
    apology, coupon = plan["actions"][0]["id"], plan["actions"][1]["id"]
    done = await client.post(f"/v1/recovery-plans/{plan['id']}/actions/{apology}/complete", json={})
    assert done.status_code == 200

    cancelled = await step(client, complaint, "cancel", reason="withdrawn")
    assert cancelled.status_code == 200, cancelled.text
    plan = (await client.get(f"/v1/recovery-plans/{plan['id']}")).json()
    assert plan["status"] == "cancelled" and plan["outcome"] == "pending"
    assert plan["evidence"]["reason"] == "the complaint was cancelled"
    assert plan["evidence"]["cancel_reason"] == "withdrawn"
    assert [a["status"] for a in plan["actions"]] == ["done", "cancelled", "cancelled"]  # what was done stays
    assert {f["status"] for f in plan["follow_ups"]} == {"cancelled"}
    timeline = (await client.get(f"/v1/complaints/{complaint['id']}/timeline")).json()["items"]
    event = next(e for e in timeline if e["type"] == "recovery_plan_cancelled")
    assert event["data"]["reason"] == "withdrawn" and len(event["data"]["actions_cancelled"]) == 2

    # Nothing more is done with it: no writes, no due actions, no offer, no evaluation, off the due list.
    plan_url = f"/v1/recovery-plans/{plan['id']}"
    for answer in (
        await client.post(f"{plan_url}/actions/{coupon}/complete", json={"value": "50.00"}),
        await client.post(f"{plan_url}/follow-ups/{plan['follow_ups'][0]['id']}", json={"satisfaction": 3}),
        await client.post(f"{plan_url}/evaluate"),  # 409, not customer-api's 503: nothing to ask it
    ):
        assert answer.status_code == 409, answer.text
    later = _now() + 400 * DAY
    assert await announce_due_actions(app.state.database, later) == 0
    offers = _Offers()
    async with PeerClient("recommend-api", PeerConfig(base_url="http://recommend-api.test"),
                          transport=httpx.MockTransport(offers.handle)) as peer:  # fmt: skip
        assert await fill_offers(app.state.database, app.state.customer_api, peer, limit=5) == 0
    assert offers.calls == 0
    due = (await client.get("/v1/recovery-plans", params={"due_before": later.isoformat()})).json()["items"]
    assert plan["id"] not in {p["id"] for p in due}
    listed = (await client.get("/v1/recovery-plans", params={"status": "cancelled"})).json()["items"]
    assert [p["id"] for p in listed] == [plan["id"]]
    again = await client.post(f"/v1/complaints/{complaint['id']}/recovery", json={})
    assert again.status_code == 200 and again.json()["status"] == "cancelled"  # still the one plan
    # Nor is it in the statistics: neither as a plan nor by what was spent on it.
    window = {"from": (_now() - DAY).isoformat(), "to": (_now() + DAY).isoformat()}
    stats = (await client.get("/v1/stats/recovery", params=window)).json()
    assert [(g["plans"], g["recovery_cost"]) for g in stats["groups"]] in ([], [(0, "0.00")])


async def test_a_reopened_complaint_cancelled_stops_its_follow_ups(client: httpx.AsyncClient, app: Any) -> None:
    closed, plan = await _closed_with_plan(client)
    assert (await step(client, closed, "reopen")).status_code == 200
    assert (await step(client, closed, "escalate")).status_code == 200
    other = await take(client, severity="low", customer_id=closed["customer_id"])
    cancelled = await step(client, closed, "cancel", reason="duplicate", duplicate_of=other["id"])
    assert cancelled.status_code == 200, cancelled.text
    plan = (await client.get(f"/v1/recovery-plans/{plan['id']}")).json()
    assert plan["status"] == "cancelled" and plan["evidence"]["duplicate_of"] == other["id"]
    assert {f["status"] for f in plan["follow_ups"]} == {"cancelled"} and {a["status"] for a in plan["actions"]} == {
        "cancelled"
    }  # fmt: skip
    assert await follow_up(app.state.database, app.state.customer_api, _now() + 400 * DAY) == 0


async def test_an_erased_customers_plan_under_way_is_cancelled(client: httpx.AsyncClient, app: Any) -> None:
    """Nobody is left to call, visit or ask: the follow-up pass would otherwise find no purchases and call the
    customer lost, counting them in the statistics."""
    closed, plan = await _closed_with_plan(client)
    async with app.state.database.session_scope() as session:
        await apply_events(session, [{"type": "erased", "customer_id": closed["customer_id"]}], app.state.calendar)
    plan = (await client.get(f"/v1/recovery-plans/{plan['id']}")).json()
    assert plan["status"] == "cancelled" and plan["evidence"]["reason"] == "the customer's personal data was erased"
    assert {f["status"] for f in plan["follow_ups"]} == {"cancelled"}
    assert await follow_up(app.state.database, app.state.customer_api, _now() + 400 * DAY) == 0
    assert (await client.post(f"/v1/recovery-plans/{plan['id']}/evaluate")).status_code == 409


# --- 4. reopened after every follow-up was done ----------------------------------------------------------


async def test_a_reopened_plan_is_followed_up_again_after_the_next_close(
    client: httpx.AsyncClient, app: Any, customer_api: CustomerApi
) -> None:
    who = str(uuid.uuid4())
    complaint = await take(client, severity="low", customer_id=who)
    await close(client, complaint)
    made = await client.post(f"/v1/complaints/{complaint['id']}/recovery", json={"follow_up_days": [1]})
    plan = made.json()
    await _shift(app, complaint["id"], 2)  # two days later: the one follow-up has fallen due
    url = f"/v1/recovery-plans/{plan['id']}"
    scored = await client.post(f"{url}/follow-ups/{plan['follow_ups'][0]['id']}", json={"satisfaction": 2})
    assert scored.status_code == 200
    assert await follow_up(app.state.database, app.state.customer_api, _now()) == 1
    plan = (await client.get(url)).json()
    assert (plan["status"], plan["outcome"], plan["follow_ups"][0]["status"]) == ("closed", "at_risk", "done")

    assert (await step(client, complaint, "reopen")).status_code == 200  # within the 14 days
    plan = (await client.get(url)).json()
    assert (plan["status"], plan["outcome"], plan["complaint_closed_at"]) == ("open", "pending", None)
    assert [(f["status"], f["due_at"], f["satisfaction"], f["outcome"]) for f in plan["follow_ups"]] == [
        ("pending", None, None, None)
    ]
    assert plan["evidence"]["earlier_follow_ups"][0]["satisfaction"] == 2  # what was found before is kept
    assert plan["evidence"]["earlier_follow_ups"][0]["outcome"] == "at_risk"

    for action in ("escalate", "resolution", "reply", "close"):
        assert (await step(client, complaint, action)).status_code == 200
    plan = (await client.get(url)).json()
    closed_at = dt.datetime.fromisoformat(plan["complaint_closed_at"])
    assert plan["status"] == "following_up"
    assert dt.datetime.fromisoformat(plan["follow_ups"][0]["due_at"]) == closed_at + DAY
    customer_api.buy(who, closed_at + dt.timedelta(hours=3))
    assert await follow_up(app.state.database, app.state.customer_api, closed_at + 2 * DAY) == 1
    plan = (await client.get(url)).json()
    assert (plan["status"], plan["outcome"], plan["follow_ups"][0]["outcome"]) == ("closed", "recovered", "recovered")


# --- 5. whole numbers, redemption times ---------------------------------------------------------------


async def test_follow_up_days_are_whole_numbers_and_redemptions_real_times(client: httpx.AsyncClient) -> None:
    complaint = await take(client, severity="low", customer_id=str(uuid.uuid4()))
    url = f"/v1/complaints/{complaint['id']}/recovery"
    for days in ([True], ["30"], [3.5], [0]):
        refused = await client.post(url, json={"follow_up_days": days})
        assert refused.status_code == 422 and "follow_up_days" in refused.text, days
    expires = _now() + 10 * DAY
    body = {"follow_up_days": [7.0, 30], "actions": [{"type": "coupon", "value": "20.00", "coupon_code": "S-20",
                                                      "coupon_expires_at": expires.isoformat()}]}  # fmt: skip
    made = await client.post(url, json=body)
    assert made.status_code == 201 and [f["offset_days"] for f in made.json()["follow_ups"]] == [7, 30]
    plan = made.json()
    complete = f"/v1/recovery-plans/{plan['id']}/actions/{plan['actions'][0]['id']}/complete"
    for when in ("2099-01-01T00:00:00Z", (_now() + dt.timedelta(minutes=10)).isoformat(),  # the future
                 "1900-01-01T00:00:00Z", (_now() - DAY).isoformat(),  # before the complaint was taken
                 (expires + dt.timedelta(seconds=1)).isoformat()):  # after the coupon expired  # fmt: skip
        refused = await client.post(complete, json={"redeemed_at": when})
        assert refused.status_code == 422 and "redeemed_at" in refused.text, (when, refused.text)
    # A shorter expiry given with the completion counts at once.
    sooner = await client.post(
        complete, json={"redeemed_at": _now().isoformat(), "coupon_expires_at": (_now() - DAY).isoformat()}
    )
    assert sooner.status_code == 422
    assert (await client.get(f"/v1/recovery-plans/{plan['id']}")).json()["actions"][0]["status"] == "pending"
    skewed = (_now() + dt.timedelta(minutes=2)).isoformat()  # another clock a little ahead: still now
    used = await client.post(complete, json={"redeemed_at": skewed})
    assert used.status_code == 200, used.text
    assert used.json()["actions"][0]["status"] == "done" and used.json()["actions"][0]["coupon_redeemed_at"]


# --- 6. versions and If-Match -------------------------------------------------------------------------


async def test_a_plan_is_answered_at_its_stored_version_and_if_match_guards_its_changes(
    client: httpx.AsyncClient,
) -> None:
    complaint = await take(client, severity="low", customer_id=str(uuid.uuid4()))
    await close(client, complaint)
    url = f"/v1/complaints/{complaint['id']}/recovery"
    made = await client.post(url, json={"owner_id": "staff-1"}, headers={"Idempotency-Key": "etag-1"})
    assert made.status_code == 201 and made.json()["status"] == "following_up"
    read = await client.get(f"/v1/recovery-plans/{made.json()['id']}")
    assert made.headers["etag"] == read.headers["etag"] == '"1"' and made.json() == read.json()
    replay = await client.post(url, json={"owner_id": "staff-1"}, headers={"Idempotency-Key": "etag-1"})
    assert replay.status_code == 201 and replay.json() == read.json()

    plan = read.json()
    complete = f"/v1/recovery-plans/{plan['id']}/actions/{plan['actions'][0]['id']}/complete"
    stale = await client.post(complete, json={}, headers={"If-Match": '"999"'})
    assert stale.status_code == 412 and stale.json()["current_version"] == 1
    assert (await client.get(read.url)).json()["actions"][0]["status"] == "pending"
    assert (await client.post(complete, json={}, headers={"If-Match": 'W/"x"'})).status_code == 412
    done = await client.post(complete, json={}, headers={"If-Match": read.headers["etag"]})
    assert done.status_code == 200 and done.json()["actions"][0]["status"] == "done"
    after = await client.get(read.url)
    assert done.headers["etag"] == after.headers["etag"] == '"2"' and done.json() == after.json()
    # evaluate: a stale version fails before customer-api (down here) is asked.
    assert (await _evaluate(client, plan, **{"If-Match": '"1"'})).status_code == 412
    assert (await _evaluate(client, plan, **{"If-Match": '"2"'})).status_code == 503
    spec = (await client.get("/openapi.json")).json()["paths"]
    for tail in ("actions/{action_id}/complete", "follow-ups/{follow_up_id}", "evaluate"):
        assert {"409", "412", "422"} <= set(spec[f"/v1/recovery-plans/{{plan_id}}/{tail}"]["post"]["responses"]), tail


async def test_purchases_and_contacts_of_a_customer_merged_since_go_to_the_survivor() -> None:
    """complaint-api learns of a merge from the customer feed, later than customer-api answers a 308 for the
    merged id: recovery reads the survivor's purchases and writes to the survivor's contact history meanwhile,
    rather than taking customer-api for unavailable until the feed catches up."""
    merged, survivor = uuid.uuid4(), uuid.uuid4()
    order = {"order_id": "SO-1", "purchased_at": "2026-11-20T10:00:00+08:00", "total": "88.00"}
    written: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith(f"/v1/customers/{merged}/"):
            return httpx.Response(308, json={"id": str(merged), "status": "merged", "merged_into": str(survivor)})
        if path == f"/v1/customers/{survivor}/purchases":
            return httpx.Response(200, json={"items": [order], "next_cursor": None})
        if path == f"/v1/customers/{survivor}/interactions":
            written.append(json.loads(request.content)["summary"])
            return httpx.Response(201, json={})
        return httpx.Response(404, json={"status": 404})

    config = PeerConfig(base_url="http://customer-api.test", retries=0)
    async with PeerClient("customer-api", config, transport=httpx.MockTransport(answer)) as peer:
        since = _now() - 30 * DAY
        assert await purchases_between(peer, merged, since, _now()) == [order]
        assert await record_contact(peer, merged, {"type": "callback", "summary": "回访"}) is True
    assert written == ["回访"]
