"""SLA over HTTP: due times on the business calendar, the hold clock, breaches flagged once, policies."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import httpx
from sqlalchemy import update
from test_complaints import BODIES, take

from complaint_api.complaints.models import Complaint
from complaint_api.sla.service import DEFAULT_POLICIES, flag_breaches
from crm_kit.db import utcnow


def _at(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_due_times_follow_priority_on_the_business_calendar(client: httpx.AsyncClient, app: Any) -> None:
    complaint = await take(client, severity="critical")  # urgent: 30 min / 4 h of business time
    calendar = app.state.calendar
    created = _at(complaint["created_at"])
    assert _at(complaint["first_response_due"]) == calendar.add(created, dt.timedelta(minutes=30))
    assert _at(complaint["resolution_due"]) == calendar.add(created, dt.timedelta(hours=4))
    low = await take(client, severity="low")
    assert _at(low["resolution_due"]) == calendar.add(_at(low["created_at"]), dt.timedelta(hours=72))


async def test_hold_stops_the_clock_and_resume_moves_the_due_times_out(client: httpx.AsyncClient, app: Any) -> None:
    complaint = await take(client)
    url = f"/v1/complaints/{complaint['id']}"
    held = await client.post(f"{url}/hold", json={"reason": "等待顾客提供购物小票照片"})
    assert held.status_code == 200, held.text
    assert held.json()["on_hold_since"] and held.json()["first_response_due"] is None
    assert (await client.post(f"{url}/hold", json={"reason": "again"})).status_code == 409
    resumed = (await client.post(f"{url}/resume")).json()
    assert resumed["on_hold_since"] is None
    calendar = app.state.calendar
    created = _at(complaint["created_at"])
    start = _at(held.json()["on_hold_since"])
    # The business time held (seconds at most here) is added back: due = due of the same policy with the pause.
    pause_end = _at(resumed["updated_at"])
    expected = calendar.due(created, dt.timedelta(minutes=DEFAULT_POLICIES["high"][0]), [(start, pause_end)])
    assert _at(resumed["first_response_due"]) == expected
    assert (await client.post(f"{url}/resume")).status_code == 409
    events = (await client.get(f"{url}/timeline")).json()["items"]
    assert [e["type"] for e in events] == ["created", "on_hold", "resumed"]


async def test_breaches_are_flagged_once_and_listed(client: httpx.AsyncClient, app: Any) -> None:
    late = await take(client, severity="critical")
    answered = await take(client, severity="critical")
    await client.post(f"/v1/complaints/{answered['id']}/answer", json=BODIES["answer"])
    future = _at(late["resolution_due"]) + dt.timedelta(minutes=1)
    for _ in range(2):  # a second sweep finds nothing new
        async with app.state.database.session_scope() as session:
            await flag_breaches(session, now=future)
    body = (await client.get(f"/v1/complaints/{late['id']}")).json()
    assert body["first_response_breached"] and body["resolution_breached"]
    events = (await client.get(f"/v1/complaints/{late['id']}/timeline")).json()["items"]
    breaches = [e["data"]["target"] for e in events if e["type"] == "sla_breached"]
    assert breaches == ["first_response", "resolution"]
    ok = (await client.get(f"/v1/complaints/{answered['id']}")).json()
    assert not ok["first_response_breached"] and not ok["resolution_breached"]
    listed = (await client.get("/v1/complaints", params={"breached": "true"})).json()["items"]
    assert [c["id"] for c in listed] == [late["id"]]
    not_listed = (await client.get("/v1/complaints", params={"breached": "false"})).json()["items"]
    assert [c["id"] for c in not_listed] == [answered["id"]]


async def test_policies_read_and_replace(client: httpx.AsyncClient) -> None:
    policies = (await client.get("/v1/sla-policies")).json()["items"]
    assert [p["priority"] for p in policies] == ["urgent", "high", "normal", "low"]
    assert policies[0] == {"priority": "urgent", "first_response_minutes": 30, "resolution_minutes": 240}
    changed = await client.put(
        "/v1/sla-policies",
        json={"items": [{"priority": "urgent", "first_response_minutes": 15, "resolution_minutes": 120}]},
    )
    assert changed.status_code == 200 and changed.json()["items"][0]["first_response_minutes"] == 15
    complaint = await take(client, severity="critical")
    assert _at(complaint["first_response_due"]) > _at(complaint["created_at"])
    bad = await client.put(
        "/v1/sla-policies",
        json={"items": [{"priority": "low", "first_response_minutes": 60, "resolution_minutes": 30}]},
    )
    assert bad.status_code == 422
    agent = {"Authorization": "Bearer agent-key-0001"}
    assert (await client.put("/v1/sla-policies", json={"items": []}, headers=agent)).status_code == 403


async def test_the_same_policies_put_at_once_are_all_taken(client: httpx.AsyncClient) -> None:
    """A PUT is safe to send again and concurrently: ten at once on priorities never stored all land."""
    items = [
        {"priority": "urgent", "first_response_minutes": 20, "resolution_minutes": 180},
        {"priority": "low", "first_response_minutes": 600, "resolution_minutes": 6000},
    ]
    answers = await asyncio.gather(*(client.put("/v1/sla-policies", json={"items": items}) for _ in range(10)))
    assert [a.status_code for a in answers] == [200] * 10, [a.text for a in answers if a.status_code != 200]
    stored = (await client.get("/v1/sla-policies")).json()["items"]
    assert [stored[0], stored[-1]] == items and all(a.json()["items"] == stored for a in answers)


async def test_policy_minutes_are_whole_numbers_and_each_priority_is_listed_once(client: httpx.AsyncClient) -> None:
    before = (await client.get("/v1/sla-policies")).json()
    # pydantic alone took true as 1 and "600" as 600; 2.0 is a whole number, as JSON Schema's integer says.
    for first, resolution in ((True, 600), (60, "600"), (60, False), ("60", 600), (60.5, 600), (None, 600)):
        row = {"priority": "low", "first_response_minutes": first, "resolution_minutes": resolution}
        refused = await client.put("/v1/sla-policies", json={"items": [row]})
        assert refused.status_code == 422, (row, refused.text)
        assert refused.json()["type"].endswith("/validation")
    twice = [
        {"priority": "low", "first_response_minutes": 60, "resolution_minutes": 600},
        {"priority": "urgent", "first_response_minutes": 10, "resolution_minutes": 60},
        {"priority": "low", "first_response_minutes": 120, "resolution_minutes": 900},
    ]
    refused = await client.put("/v1/sla-policies", json={"items": twice})
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"] == "priority listed more than once: low"
    assert (await client.get("/v1/sla-policies")).json() == before  # nothing of a refused request is kept
    taken = await client.put(
        "/v1/sla-policies",
        json={"items": [{"priority": "low", "first_response_minutes": 2.0, "resolution_minutes": 600}]},
    )
    assert taken.status_code == 200, taken.text
    assert taken.json()["items"][-1] == {"priority": "low", "first_response_minutes": 2, "resolution_minutes": 600}


async def test_a_reopened_complaint_runs_on_the_resolution_time_it_had_left(
    client: httpx.AsyncClient, app: Any
) -> None:
    complaint = await take(client)  # high: 8 h of business time to resolve
    url = f"/v1/complaints/{complaint['id']}"
    await client.post(f"{url}/answer", json=BODIES["answer"])
    await client.post(f"{url}/close", json={})
    # As if all of it happened two days ago: answered an hour after intake, closed at once.
    calendar = app.state.calendar
    created = utcnow() - dt.timedelta(days=2)
    answered = created + dt.timedelta(hours=1)
    async with app.state.database.session_scope() as session:
        await session.execute(
            update(Complaint)
            .where(Complaint.id == uuid.UUID(complaint["id"]))
            .values(
                created_at=created, first_responded_at=answered, resolved_at=answered, closed_at=answered,
                first_response_due=calendar.due(created, dt.timedelta(hours=1)),
                resolution_due=calendar.due(created, dt.timedelta(hours=8)),
            )
        )  # fmt: skip
    reopened = (await client.post(f"{url}/reopen", json=BODIES["reopen"])).json()
    stood_resolved = [(answered, _at(reopened["updated_at"]))]
    assert _at(reopened["resolution_due"]) == calendar.due(created, dt.timedelta(hours=8), stood_resolved)
    assert _at(reopened["resolution_due"]) > _at(reopened["updated_at"])
    async with app.state.database.session_scope() as session:
        await flag_breaches(session, now=_at(reopened["updated_at"]) + dt.timedelta(seconds=1))
    assert (await client.get(url)).json()["resolution_breached"] is False


async def test_a_hold_ends_when_the_complaint_closes(client: httpx.AsyncClient) -> None:
    complaint = await take(client)
    url = f"/v1/complaints/{complaint['id']}"
    assert (await client.post(f"{url}/hold", json={"reason": "等待顾客回复"})).status_code == 200
    await client.post(f"{url}/answer", json=BODIES["answer"])
    closed = (await client.post(f"{url}/close", json={})).json()
    assert closed["status"] == "closed" and closed["on_hold_since"] is None
    reopened = (await client.post(f"{url}/reopen", json=BODIES["reopen"])).json()
    assert reopened["on_hold_since"] is None and reopened["resolution_due"] is not None
    assert (await client.post(f"{url}/hold", json={"reason": "再次等待"})).status_code == 200  # a hold of its own


async def test_a_target_met_late_is_a_breach_even_when_no_sweep_saw_it_missed(
    client: httpx.AsyncClient, app: Any
) -> None:
    late, on_time = await take(client), await take(client)
    # Both due a minute ago, as if the sweep had not run since (a replica restarting, a long feed catch-up).
    past = utcnow() - dt.timedelta(minutes=1)
    async with app.state.database.session_scope() as session:
        await session.execute(
            update(Complaint)
            .where(Complaint.id == uuid.UUID(late["id"]))
            .values(first_response_due=past, resolution_due=past)
        )
    answered = await client.post(f"/v1/complaints/{late['id']}/answer", json=BODIES["answer"])
    assert answered.status_code == 200, answered.text
    body = answered.json()
    assert body["first_response_breached"] and body["resolution_breached"]
    read = await client.get(f"/v1/complaints/{late['id']}")
    assert read.json() == body and read.headers["etag"] == answered.headers["etag"]
    events = (await client.get(f"/v1/complaints/{late['id']}/timeline")).json()["items"]
    assert [(e["type"], e["data"].get("target")) for e in events] == [
        ("created", None), ("status_changed", None), ("sla_breached", "first_response"), ("sla_breached", "resolution"),
    ]  # fmt: skip
    met = (await client.post(f"/v1/complaints/{on_time['id']}/answer", json=BODIES["answer"])).json()
    assert not met["first_response_breached"] and not met["resolution_breached"]
    # A sweep afterwards adds nothing: each target is flagged once.
    async with app.state.database.session_scope() as session:
        await flag_breaches(session, now=utcnow() + dt.timedelta(days=30))
    events = (await client.get(f"/v1/complaints/{late['id']}/timeline")).json()["items"]
    assert [e["type"] for e in events].count("sla_breached") == 2
    stats = (await client.get("/v1/stats/complaints")).json()["groups"][0]
    assert stats["volume"] == 2 and stats["sla_breach_rate"] == 0.5


async def test_a_target_missed_before_a_hold_is_flagged_when_the_hold_starts(
    client: httpx.AsyncClient, app: Any
) -> None:
    """Due times are void while on hold: a response given during the hold would hide a breach no sweep saw."""
    complaint = await take(client)
    async with app.state.database.session_scope() as session:
        await session.execute(
            update(Complaint)
            .where(Complaint.id == uuid.UUID(complaint["id"]))
            .values(first_response_due=utcnow() - dt.timedelta(minutes=1))
        )
    held = await client.post(f"/v1/complaints/{complaint['id']}/hold", json={"reason": "等待顾客提供小票"})
    assert held.status_code == 200, held.text
    assert held.json()["first_response_breached"] and not held.json()["resolution_breached"]
    events = (await client.get(f"/v1/complaints/{complaint['id']}/timeline")).json()["items"]
    assert [(e["type"], e["data"].get("target")) for e in events][-2:] == [
        ("sla_breached", "first_response"), ("on_hold", None)
    ]  # fmt: skip
