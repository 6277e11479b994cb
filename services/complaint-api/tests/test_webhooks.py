"""Signed webhooks against a real receiver (uvicorn on 127.0.0.1): subscriptions, signatures, order per
complaint, a receiver that is down, failing or hanging, unsubscribing, and concurrent passes.

The app's own delivery loop keeps running during these tests, like another replica would: assertions hold
whoever sends a delivery.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from conftest import auth
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from test_complaints import step, take

from complaint_api.complaints.models import ComplaintEvent
from complaint_api.sla.service import flag_breaches
from complaint_api.webhooks.jobs import SEND_CONCURRENCY, deliver_once
from complaint_api.webhooks.models import Webhook, WebhookDelivery
from complaint_api.webhooks.service import IN_FLIGHT_PER_WEBHOOK, LEASE, next_cursor, sign, verify_signature
from crm_kit.db import utcnow
from crm_kit.idempotency import idempotency_keys

SECRET = "test-secret-0123456789"
ALL_EVENTS = [
    "complaint.created",
    "complaint.status_changed",
    "complaint.sla_breached",
    "complaint.satisfaction_received",
]


@dataclass(frozen=True)
class Received:
    path: str
    status: int  # what the receiver answered
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.body)
        return result


class Receiver:
    """An HTTP endpoint in a background thread that records every request and answers `status`.

    Its port is taken at once but only listened on from `start()`: until then a connection is refused,
    like a receiver that is down.
    """

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self.status = 200
        self.delay = 0.0
        # Cleared, requests are taken but not answered until it is set again: a receiver that hangs.
        self.answering = threading.Event()
        self.answering.set()
        self.arrived = 0
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def url(self, path: str = "hook") -> str:
        return f"{self.base_url}/{path}"

    async def _record(self, request: Request) -> Response:
        body = await request.body()
        with self._lock:
            self.arrived += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if not self.answering.is_set():
            await asyncio.to_thread(self.answering.wait)
        status = self.status
        with self._lock:
            self.requests.append(Received(request.url.path.lstrip("/"), status, dict(request.headers), body))
        return Response(status_code=status)

    async def start(self) -> None:
        app = Starlette(routes=[Route("/{path}", self._record, methods=["POST"])])
        config = uvicorn.Config(app, lifespan="off", log_config=None, log_level="error", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)
        self._thread.start()
        for _ in range(500):
            if self._server.started:
                return
            await asyncio.sleep(0.01)
        raise RuntimeError("the receiver did not start")

    async def stop(self) -> None:
        self.answering.set()
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            await asyncio.to_thread(self._thread.join, 5)
        self._socket.close()

    def accepted(self, path: str = "hook") -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.path == path and 200 <= r.status < 300]

    def attempts(self, path: str = "hook") -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.path == path]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    running = Receiver()
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
async def down_receiver() -> AsyncIterator[Receiver]:
    """A receiver that is not listening yet: the test starts it."""
    waiting = Receiver()
    yield waiting
    await waiting.stop()


@pytest.fixture
async def hung_receiver() -> AsyncIterator[Receiver]:
    """A receiver that takes requests but answers none until the test sets its `answering` event."""
    hung = Receiver()
    hung.answering.clear()
    await hung.start()
    yield hung
    await hung.stop()


async def subscribe(client: httpx.AsyncClient, url: str, events: list[str] | None = None) -> dict[str, Any]:
    response = await client.post("/v1/webhooks", json={"url": url, "events": events or ALL_EVENTS, "secret": SECRET})
    assert response.status_code == 201, response.text
    return response.json()


async def due_now(app: Any) -> None:
    """Skip the backoff wait: failed deliveries become due now. Leased ones (an attempt in flight) are left
    alone, or the test itself would make a delivery go out twice."""
    async with app.state.database.session_scope() as session:
        query = select(WebhookDelivery).where(WebhookDelivery.status == "pending", WebhookDelivery.attempts > 0)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        for delivery in (await session.execute(query.execution_options(populate_existing=True))).scalars():
            assert delivery.next_attempt_at is not None and delivery.last_attempt_at is not None
            if delivery.next_attempt_at - delivery.last_attempt_at != LEASE:
                delivery.next_attempt_at = utcnow()


async def drive(app: Any, done: Callable[[], bool], *, skip_backoff: bool = True, passes: int = 60) -> None:
    for _ in range(passes):
        if skip_backoff:
            await due_now(app)
        await deliver_once(app)
        if done():
            return
        await asyncio.sleep(0.02)
    assert done(), "deliveries did not arrive"


async def deliveries(client: httpx.AsyncClient, webhook: dict[str, Any], **params: Any) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/webhooks/{webhook['id']}/deliveries", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def delivered_log(client: httpx.AsyncClient, webhook: dict[str, Any], seconds: float = 10) -> list[Any]:
    """The delivery log once every delivery in it is recorded as delivered, or as it is after ``seconds``.

    The receiver counts a delivery when the request arrives; the sender records it once the answer is back, so the
    log can trail what the receiver has seen by a moment.
    """
    deadline = time.monotonic() + seconds
    while True:
        log = await deliveries(client, webhook)
        if all(d["status"] == "delivered" for d in log) or time.monotonic() > deadline:
            return log
        await asyncio.sleep(0.02)


async def until(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    """Wait for `condition`; after `seconds` (far more than it should take) fail rather than hang."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not after {seconds} s"
        await asyncio.sleep(0.02)


def timeline_of(received: list[Received]) -> dict[str, list[tuple[str, str | None]]]:
    """Per complaint, the (event, to_status) received, in arrival order."""
    per_complaint: dict[str, list[tuple[str, str | None]]] = {}
    for r in received:
        body = r.json
        per_complaint.setdefault(body["complaint"]["id"], []).append((body["event"], body["data"].get("to_status")))
    return per_complaint


async def timeline_from_api(client: httpx.AsyncClient, complaint: dict[str, Any]) -> list[tuple[str, str | None]]:
    names = {"created": "complaint.created", "status_changed": "complaint.status_changed",
             "sla_breached": "complaint.sla_breached", "satisfaction": "complaint.satisfaction_received"}  # fmt: skip
    events = (await client.get(f"/v1/complaints/{complaint['id']}/timeline")).json()["items"]
    return [(names[e["type"]], e["to_status"]) for e in events if e["type"] in names]


def test_signatures_verify_and_refuse_tampering_and_stale_timestamps() -> None:
    body = b'{"id":"x"}'
    now = int(time.time())
    header = sign(SECRET, str(now), body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify_signature(SECRET, str(now), body, header)
    assert verify_signature(SECRET, now, body, header)
    assert not verify_signature(SECRET, str(now), body + b" ", header)
    assert not verify_signature("another-secret-0123", str(now), body, header)
    assert not verify_signature(SECRET, str(now + 1), body, header)
    assert not verify_signature(SECRET, str(now), body, header.removeprefix("sha256="))
    assert not verify_signature(SECRET, "soon", body, header)
    old = now - 301
    assert not verify_signature(SECRET, str(old), body, sign(SECRET, str(old), body))
    assert verify_signature(SECRET, str(old), body, sign(SECRET, str(old), body), now=old + 10)


def test_the_cursor_waits_at_a_young_gap_and_passes_an_old_one() -> None:
    now = utcnow()
    young, old = now - dt.timedelta(seconds=1), now - dt.timedelta(minutes=5)
    assert next_cursor(10, [(11, young), (12, young)], now) == 12
    # 12 is missing: a transaction that took it may not have committed yet.
    assert next_cursor(10, [(11, young), (13, young), (14, young)], now) == 11
    # ... but a gap that has stood for minutes is a rolled-back insert.
    assert next_cursor(10, [(11, old), (13, old), (14, young)], now) == 14
    assert next_cursor(10, [], now) == 10


async def test_subscribe_list_read_unsubscribe_and_scopes(client: httpx.AsyncClient) -> None:
    generated = await client.post(
        "/v1/webhooks", json={"url": "https://example.com/h", "events": ["complaint.created"]}
    )
    assert generated.status_code == 201, generated.text
    created = generated.json()
    assert created["secret"].startswith("whsec_") and len(created["secret"]) >= 16
    assert generated.headers["location"] == f"/v1/webhooks/{created['id']}"
    own = await subscribe(client, "http://127.0.0.1:1/h", ["complaint.status_changed", "complaint.status_changed"])
    assert own["secret"] is None and own["events"] == ["complaint.status_changed"]

    listed = (await client.get("/v1/webhooks")).json()
    assert [w["id"] for w in listed["items"]] == [own["id"], created["id"]]
    assert all("secret" not in w for w in listed["items"])
    first = (await client.get("/v1/webhooks", params={"limit": 1})).json()
    rest = (await client.get("/v1/webhooks", params={"limit": 1, "cursor": first["next_cursor"]})).json()
    assert [w["id"] for w in first["items"] + rest["items"]] == [own["id"], created["id"]]
    read = (await client.get(f"/v1/webhooks/{created['id']}")).json()
    assert read["url"] == "https://example.com/h" and read["created_by"] == "dev" and "secret" not in read

    bad = [
        {"url": "ftp://example.com/h", "events": ["complaint.created"]},
        {"url": "example.com/h", "events": ["complaint.created"]},
        {"url": "https://user:pw@example.com/h", "events": ["complaint.created"]},
        {"url": "https://example.com/" + "x" * 2000, "events": ["complaint.created"]},
        {"url": "https://example.com/h", "events": ["complaint.deleted"]},
        {"url": "https://example.com/h", "events": []},
        {"url": "https://example.com/h", "events": ["complaint.created"], "secret": "short"},
    ]
    for body in bad:
        response = await client.post("/v1/webhooks", json=body)
        assert response.status_code == 422, body
        assert response.headers["content-type"] == "application/problem+json"

    agent = auth("agent")
    assert (await client.get("/v1/webhooks", headers=agent)).status_code == 403
    forbidden = await client.post("/v1/webhooks", json={"url": "https://e.com", "events": ALL_EVENTS}, headers=agent)
    assert forbidden.status_code == 403 and forbidden.json()["required_scope"] == "webhooks:manage"
    assert (await client.delete(f"/v1/webhooks/{own['id']}", headers=agent)).status_code == 403

    assert (await client.delete(f"/v1/webhooks/{own['id']}")).status_code == 204
    assert (await client.get(f"/v1/webhooks/{own['id']}")).status_code == 404
    assert (await client.delete(f"/v1/webhooks/{own['id']}")).status_code == 404
    assert (await client.get(f"/v1/webhooks/{own['id']}/deliveries")).status_code == 404
    assert [w["id"] for w in (await client.get("/v1/webhooks")).json()["items"]] == [created["id"]]


async def test_a_create_retried_after_the_webhook_was_deleted_is_gone_and_its_secret_forgotten(
    client: httpx.AsyncClient, app: Any
) -> None:
    body, key = {"url": "https://example.com/h", "events": ["complaint.created"]}, {"Idempotency-Key": "wh-0001"}
    created = await client.post("/v1/webhooks", json=body, headers=key)
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    replayed = await client.post("/v1/webhooks", json=body, headers=key)
    assert replayed.headers["Idempotent-Replayed"] == "true" and replayed.content == created.content

    assert (await client.delete(created.headers["location"])).status_code == 204
    # Neither the dead subscription with its secret again, nor a new one: the request was carried out, and is gone.
    retried = await client.post("/v1/webhooks", json=body, headers=key)
    assert retried.status_code == 410, retried.text
    assert retried.headers["content-type"] == "application/problem+json" and secret not in retried.text
    assert (await client.get("/v1/webhooks")).json()["items"] == []
    async with app.state.database.session_scope(read_only=True) as session:
        stored = (await session.execute(select(idempotency_keys))).mappings().all()
    assert len(stored) == 1 and secret not in repr(dict(stored[0])), stored


async def test_events_arrive_signed_in_timeline_order(client: httpx.AsyncClient, app: Any, receiver: Receiver) -> None:
    before = await take(client)  # taken before anyone subscribed: not delivered
    webhook = await subscribe(client, receiver.url())
    await subscribe(client, receiver.url("ratings"), ["complaint.satisfaction_received"])
    complaint = await take(client)
    for action in ("escalate", "resolution", "reply", "close"):
        assert (await step(client, complaint, action)).status_code == 200
    rated = await client.post(f"/v1/complaints/{complaint['id']}/satisfaction", json={"score": 4, "comment": "谢谢"})
    assert rated.status_code == 200

    await drive(app, lambda: len(receiver.accepted()) >= 6 and len(receiver.accepted("ratings")) >= 1)
    got = receiver.accepted()
    assert [(r.json["event"], r.json["data"].get("to_status")) for r in got] == [
        ("complaint.created", "open"),
        ("complaint.status_changed", "escalated"),
        ("complaint.status_changed", "resolved"),
        ("complaint.status_changed", "replied"),
        ("complaint.status_changed", "closed"),
        ("complaint.satisfaction_received", None),
    ]
    for r in got:
        headers, body = r.headers, r.json
        assert headers["content-type"] == "application/json"
        assert verify_signature(SECRET, headers["x-crm-timestamp"], r.body, headers["x-crm-signature"])
        assert not verify_signature(
            "not-the-secret-0123", headers["x-crm-timestamp"], r.body, headers["x-crm-signature"]
        )
        assert headers["x-crm-event"] == body["event"] and headers["x-crm-delivery"] == body["id"]
        assert body["complaint"]["id"] == complaint["id"] and body["complaint"]["number"] == complaint["number"]
        assert body["complaint"]["customer_id"] == complaint["customer_id"]
        assert "subject" not in body["complaint"] and "note" not in body["data"]
        assert body["occurred_at"].endswith("Z")
    escalated = got[1].json["data"]
    assert escalated["from_status"] == "open" and escalated["department"] == "生鲜部"
    assert got[5].json["data"]["score"] == 4 and "谢谢" not in got[5].body.decode()
    assert [r.json["event"] for r in receiver.accepted("ratings")] == ["complaint.satisfaction_received"]
    assert before["id"] not in {r.json["complaint"]["id"] for r in receiver.attempts()}

    log = await delivered_log(client, webhook)
    assert [d["id"] for d in log] == [r.json["id"] for r in reversed(got)]
    assert all(d["status"] == "delivered" and d["attempts"] == 1 and d["last_status_code"] == 200 for d in log)
    assert all(d["delivered_at"] and d["next_attempt_at"] is None and d["last_error"] is None for d in log)
    assert log[0]["event"] == "complaint.satisfaction_received" and log[0]["complaint_id"] == complaint["id"]
    assert await deliveries(client, webhook, status="failed") == []
    page = (await client.get(f"/v1/webhooks/{webhook['id']}/deliveries", params={"limit": 4})).json()
    more = await deliveries(client, webhook, limit=4, cursor=page["next_cursor"])
    assert [d["id"] for d in page["items"] + more] == [d["id"] for d in log]


async def test_a_receiver_that_was_down_gets_everything_once_in_order(
    client: httpx.AsyncClient, app: Any, down_receiver: Receiver
) -> None:
    webhook = await subscribe(client, down_receiver.url())
    first = await take(client, severity="critical")
    async with app.state.database.session_scope() as session:  # two SLA breaches on the first complaint
        await flag_breaches(session, now=utcnow() + dt.timedelta(days=30))
    second = await take(client)
    for action in ("escalate", "resolution", "reply"):
        assert (await step(client, first, action)).status_code == 200
    assert (await step(client, second, "answer")).status_code == 200

    # Connection refused: every head of line fails, the rest wait behind it. Three attempts each, counting any
    # the app's own delivery loop (every second) makes; while it holds a head, due_now leaves that one alone.
    for _ in range(60):
        await due_now(app)
        assert await deliver_once(app) == 0
        log = await deliveries(client, webhook)
        if sum(d["attempts"] >= 3 for d in log) >= 2:
            break
        await asyncio.sleep(0.02)
    assert len(log) == 1 + 2 + 3 + 2 and all(d["status"] == "pending" for d in log)
    heads = [d for d in log if d["attempts"] > 0]
    assert sorted(d["event_id"] for d in heads) == sorted(
        min(d["event_id"] for d in log if d["complaint_id"] == c["id"]) for c in (first, second)
    )
    assert all(d["attempts"] >= 3 and d["last_status_code"] is None for d in heads)
    assert all(d["last_error"].startswith("ConnectError") for d in heads)

    await down_receiver.start()
    await drive(app, lambda: len(down_receiver.accepted()) >= len(log))
    got = down_receiver.accepted()
    ids = [r.json["id"] for r in got]
    assert len(ids) == len(set(ids)) == len(log)
    per_complaint = timeline_of(got)
    for complaint in (first, second):
        assert per_complaint[complaint["id"]] == await timeline_from_api(client, complaint)
    assert [e for e, _ in per_complaint[first["id"]]][1:3] == ["complaint.sla_breached"] * 2
    final = await delivered_log(client, webhook)
    assert all(d["status"] == "delivered" for d in final)
    assert all(d["attempts"] > 1 for d in final if d["id"] in {h["id"] for h in heads})


async def test_a_failing_receiver_gets_the_same_signed_delivery_until_it_accepts(
    client: httpx.AsyncClient, app: Any, receiver: Receiver
) -> None:
    webhook = await subscribe(client, receiver.url())
    complaint = await take(client)
    receiver.status = 503
    await drive(app, lambda: len(receiver.attempts()) >= 3)
    assert {r.headers["x-crm-delivery"] for r in receiver.attempts()} == {receiver.attempts()[0].json["id"]}
    assert len({r.body for r in receiver.attempts()}) == 1  # every retry sends the same bytes, freshly signed
    for r in receiver.attempts():
        assert verify_signature(SECRET, r.headers["x-crm-timestamp"], r.body, r.headers["x-crm-signature"])
    [pending] = await deliveries(client, webhook)
    assert pending["status"] == "pending" and pending["last_status_code"] == 503
    assert pending["last_error"] == "answered HTTP 503"
    next_attempt = dt.datetime.fromisoformat(pending["next_attempt_at"])
    assert next_attempt > utcnow() + dt.timedelta(seconds=1)  # backing off: 2, 4, 8 ... s

    assert (await step(client, complaint, "answer")).status_code == 200
    assert (await step(client, complaint, "close")).status_code == 200
    receiver.status = 200
    await drive(app, lambda: len(receiver.accepted()) >= 3)
    got = receiver.accepted()
    assert len({r.json["id"] for r in got}) == len(got) == 3
    assert timeline_of(got)[complaint["id"]] == await timeline_from_api(client, complaint)
    log = await delivered_log(client, webhook)
    assert all(d["status"] == "delivered" and d["last_status_code"] == 200 for d in log)
    assert log[-1]["attempts"] > 1 and log[-1]["event"] == "complaint.created"


async def test_a_delivery_is_given_up_after_three_days_and_the_next_one_goes_on(
    client: httpx.AsyncClient, app: Any, receiver: Receiver
) -> None:
    webhook = await subscribe(client, receiver.url())
    receiver.status = 503
    complaint = await take(client)
    assert (await step(client, complaint, "answer")).status_code == 200
    await drive(app, lambda: len(receiver.attempts()) >= 1)
    async with app.state.database.session_scope() as session:  # the first event was queued 3 days ago
        head = (await session.execute(select(WebhookDelivery).order_by(WebhookDelivery.event_id))).scalars().first()
        assert head is not None
        head.created_at = utcnow() - dt.timedelta(days=3, minutes=1)
    for _ in range(60):  # one more attempt at the old one gives it up
        await due_now(app)
        await deliver_once(app)
        if await deliveries(client, webhook, status="failed"):
            break
    receiver.status = 200
    await drive(app, lambda: len(receiver.accepted()) == 1)
    [answered] = receiver.accepted()
    assert answered.json["event"] == "complaint.status_changed" and answered.json["data"]["to_status"] == "answered"
    [failed] = await deliveries(client, webhook, status="failed")
    assert failed["event"] == "complaint.created" and failed["last_status_code"] == 503
    assert failed["next_attempt_at"] is None and failed["delivered_at"] is None and failed["attempts"] >= 2
    assert [d["status"] for d in await deliveries(client, webhook)] == ["delivered", "failed"]


async def test_an_unsubscribed_webhook_gets_nothing_more(
    client: httpx.AsyncClient, app: Any, receiver: Receiver
) -> None:
    webhook = await subscribe(client, receiver.url())
    complaint = await take(client)
    await drive(app, lambda: len(receiver.accepted()) == 1)
    receiver.status = 503
    assert (await step(client, complaint, "escalate")).status_code == 200
    await drive(app, lambda: len(receiver.attempts()) >= 2)  # the escalation is owed and being retried

    assert (await client.delete(f"/v1/webhooks/{webhook['id']}")).status_code == 204
    await asyncio.sleep(0.2)  # an attempt already in flight ends (with a 503)
    receiver.status = 200
    seen = len(receiver.attempts())
    assert (await step(client, complaint, "resolution")).status_code == 200
    for _ in range(3):
        await due_now(app)
        assert await deliver_once(app) == 0
    await asyncio.sleep(1.2)  # and the app's own loop has had a pass too
    assert len(receiver.attempts()) == seen and len(receiver.accepted()) == 1
    async with app.state.database.session_scope(read_only=True) as session:
        left = (await session.execute(select(func.count()).select_from(WebhookDelivery))).scalar_one()
    assert left == 0


async def test_a_receiver_that_hangs_does_not_hold_up_the_others(
    client: httpx.AsyncClient, app: Any, receiver: Receiver, hung_receiver: Receiver
) -> None:
    # More complaints than sends at once: the hung receiver is owed more heads of line than there are slots.
    # They are taken before anyone subscribed, so what is owed is their SLA breaches (two each), committed
    # at once: the hung receiver's attempts start when the healthy receiver's do.
    complaints = [await take(client, severity="critical") for _ in range(SEND_CONCURRENCY + 2)]
    hung = await subscribe(client, hung_receiver.url())  # first: its deliveries are queued, and due, first
    healthy = await subscribe(client, receiver.url())
    async with app.state.database.session_scope() as session:
        await flag_breaches(session, now=utcnow() + dt.timedelta(days=30))
    owed = 2 * len(complaints)

    # Only the app's own loop sends here, as one replica would (a pass of the test's own would be a second
    # sender, free to go on while the first one waits).
    await until(lambda: len(receiver.accepted()) >= owed and hung_receiver.arrived > 0, "the healthy receiver's events")
    log = await deliveries(client, hung)
    assert len(log) == owed and all(d["status"] == "pending" for d in log)
    assert all(d["last_error"] is None for d in log), "the healthy receiver's events waited for the hung one"
    assert 0 < sum(d["attempts"] for d in log) <= IN_FLIGHT_PER_WEBHOOK  # every attempt still held, no more
    assert hung_receiver.requests == []

    hung_receiver.answering.set()
    await until(lambda: len(hung_receiver.accepted()) >= owed, "the hung receiver's events once it answers")
    for webhook, got in ((healthy, receiver.accepted()), (hung, hung_receiver.accepted())):
        event_ids = {d["id"]: d["event_id"] for d in await deliveries(client, webhook)}
        assert len({r.json["id"] for r in got}) == len(got) == owed
        per_complaint: dict[str, list[int]] = {}
        for r in got:
            per_complaint.setdefault(r.json["complaint"]["id"], []).append(event_ids[r.json["id"]])
        assert all(len(ids) == 2 and ids == sorted(ids) for ids in per_complaint.values())


async def test_concurrent_passes_never_send_a_delivery_twice(
    client: httpx.AsyncClient, app: Any, receiver: Receiver
) -> None:
    await subscribe(client, receiver.url())
    complaints = [await take(client) for _ in range(4)]
    for complaint in complaints:
        for action in ("escalate", "resolution"):
            assert (await step(client, complaint, action)).status_code == 200
    receiver.delay = 0.02  # widen the window in which two passes could pick the same delivery

    for _ in range(30):
        await asyncio.gather(deliver_once(app), deliver_once(app), deliver_once(app))
        if len(receiver.attempts()) >= 12:
            break
    got = receiver.attempts()
    ids = [r.headers["x-crm-delivery"] for r in got]
    assert len(ids) == len(set(ids)) == 12
    per_complaint = timeline_of(got)
    for complaint in complaints:
        assert per_complaint[complaint["id"]] == await timeline_from_api(client, complaint)


async def test_an_event_committed_after_a_later_one_is_not_skipped(
    client: httpx.AsyncClient, app: Any, backend: str, receiver: Receiver
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time: event ids always commit in order")
    await subscribe(client, receiver.url())
    early = await take(client)
    await drive(app, lambda: len(receiver.accepted()) == 1)
    # A transaction takes an event id and has not committed when a later id commits.
    async with app.state.database.session_scope() as slow:
        slow.add(ComplaintEvent(complaint_id=uuid.UUID(early["id"]), type="status_changed", actor="slow",
                                occurred_at=utcnow(), from_status="open", to_status="answered", data={}))  # fmt: skip
        await slow.flush()
        late = await take(client)
        await drive(app, lambda: len(receiver.accepted()) == 2)
        async with app.state.database.session_scope(read_only=True) as session:
            cursor = (await session.execute(select(Webhook.last_event_id))).scalar_one()
            newest = (await session.execute(select(func.max(ComplaintEvent.id)))).scalar_one()
        assert cursor < newest  # it waits at the gap, while the later event was delivered
    await drive(app, lambda: len(receiver.accepted()) == 3)
    assert [r.json["complaint"]["id"] for r in receiver.accepted()] == [early["id"], late["id"], early["id"]]
    assert receiver.accepted()[2].json["data"]["to_status"] == "answered"


@pytest.fixture
def private_refused(app: Any) -> Iterator[None]:
    """This service as configured in production: webhooks only to public addresses."""
    app.state.settings.webhook_allow_private = False
    yield
    app.state.settings.webhook_allow_private = True


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "http://no-such-host.invalid/hook",
        # IPv6 forms that carry an internal IPv4 address to it: NAT64, the old compatible form, 6to4; site-local.
        "http://[64:ff9b::a00:1]/hook",
        "http://[::10.0.0.1]/hook",
        "http://[::127.0.0.1]/hook",
        "http://[2002:a00:1::1]/hook",
        "http://[fec0::1]/hook",
        # Not global by the IANA registries, though Python before 3.11.10 / 3.12.4 says so (CVE-2024-4032).
        "http://192.0.0.8/hook",
        "http://192.0.0.255/hook",
        "http://[64:ff9b:1::a00:1]/hook",
        "http://[3fff::1]/hook",
    ],
)
async def test_webhooks_to_internal_addresses_are_refused(
    client: httpx.AsyncClient, private_refused: None, url: str
) -> None:
    response = await client.post("/v1/webhooks", json={"url": url, "events": ALL_EVENTS})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "url"


async def test_a_refusal_does_not_say_which_internal_address_a_name_has(
    client: httpx.AsyncClient, private_refused: None
) -> None:
    """A key that manages webhooks must not map the network's names to addresses through the refusals."""
    response = await client.post("/v1/webhooks", json={"url": "http://localhost:8080/hook", "events": ALL_EVENTS})
    assert response.status_code == 422 and "internal address" in response.text, response.text
    assert "127.0.0.1" not in response.text and "::1" not in response.text


@pytest.mark.parametrize(
    "url",
    [
        "https://93.184.216.34/hook",
        "https://[64:ff9b::5db8:d822]/hook",
        "https://[2002:5db8:d822::1]/hook",
        "https://192.0.0.9/hook",  # the registry's globally reachable exceptions in 192.0.0.0/24
    ],
)
async def test_a_public_address_is_accepted(client: httpx.AsyncClient, private_refused: None, url: str) -> None:
    response = await client.post("/v1/webhooks", json={"url": url, "events": ALL_EVENTS})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("port", ["99999", "abc", "-1", "0"])
async def test_a_url_without_a_usable_port_is_refused(client: httpx.AsyncClient, port: str) -> None:
    response = await client.post("/v1/webhooks", json={"url": f"http://example.com:{port}/hook", "events": ALL_EVENTS})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "body.url"


async def test_a_destination_that_turned_internal_is_not_sent_to(
    client: httpx.AsyncClient, app: Any, receiver: Receiver
) -> None:
    webhook = await subscribe(client, receiver.url())
    await take(client)
    app.state.settings.webhook_allow_private = False  # as if the name now pointed inside the network
    try:
        await deliver_once(app)
    finally:
        app.state.settings.webhook_allow_private = True
    [attempted] = await deliveries(client, webhook)
    assert attempted["status"] == "pending" and "refused" in attempted["last_error"]
    assert receiver.attempts() == []
