"""Callback requests: due times on the business calendar, queue order, retries when nobody answers, and the
customer's name and tier filled in once customer-api, down when the callback was asked for, answers."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from conftest import auth
from test_complaints import CUSTOMER, take

from complaint_api.complaints.jobs import complete_snapshots
from complaint_api.feeds.service import apply_events
from crm_kit.http import PeerClient, PeerConfig

CST = dt.timezone(dt.timedelta(hours=8))
GOLD = uuid.uuid4()


def _at(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


async def ask(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"name": "陈先生", "phone": "139 1234 5678", "topic": "咨询以旧换新补贴", **fields}
    response = await client.post("/v1/callbacks", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_callback_is_due_within_business_minutes_or_at_the_preferred_time(
    client: httpx.AsyncClient, app: Any
) -> None:
    callback = await ask(client)
    assert callback["phone"] == "+8613912345678" and callback["status"] == "pending"
    assert callback["priority"] == "normal"
    expected = app.state.calendar.add(_at(callback["created_at"]), dt.timedelta(minutes=30))
    assert _at(callback["due_at"]) == expected
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=20)).replace(microsecond=0)
    preferred = await ask(client, preferred_at=later.astimezone(CST).isoformat())  # as a caller in Shanghai writes it
    # Answered in UTC, as every time is, not in the offset it was sent in.
    assert preferred["due_at"] == preferred["preferred_at"] == f"{later:%Y-%m-%dT%H:%M:%S}Z"
    assert (await client.get(f"/v1/callbacks/{preferred['id']}")).json() == preferred


async def test_a_callback_about_a_complaint_is_that_customers_and_is_found_at_its_location(
    client: httpx.AsyncClient,
) -> None:
    complaint = await take(client)
    body = {"name": "陈先生", "phone": "139 1234 5678", "topic": "投诉回电", "complaint_id": complaint["id"]}
    created = await client.post("/v1/callbacks", json=body)
    assert created.status_code == 201 and created.json()["customer_id"] == complaint["customer_id"], created.text
    read = await client.get(created.headers["location"])
    assert read.status_code == 200 and read.json() == created.json()
    assert (await client.get(f"/v1/callbacks/{uuid.uuid4()}")).status_code == 404
    someone_else = await client.post("/v1/callbacks", json={**body, "customer_id": str(uuid.uuid4())})
    assert someone_else.status_code == 422 and someone_else.json()["field"] == "complaint_id", someone_else.text


async def test_the_queue_puts_the_callback_due_first_on_top(client: httpx.AsyncClient) -> None:
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    late = await ask(client, topic="晚", preferred_at=(soon + dt.timedelta(days=1)).isoformat())
    early = await ask(client, topic="早", preferred_at=soon.isoformat())
    now = await ask(client, topic="现在")
    pages, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/callbacks", params=params)).json()
        pages += [c["id"] for c in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert pages == [now["id"], early["id"], late["id"]]


async def test_no_answer_is_retried_until_the_attempts_run_out(client: httpx.AsyncClient) -> None:
    callback = await ask(client)
    url = f"/v1/callbacks/{callback['id']}/complete"
    for attempt in (1, 2):
        retried = (await client.post(url, json={"outcome": "no_answer"})).json()
        assert retried["status"] == "pending" and retried["attempts"] == attempt
    given_up = (await client.post(url, json={"outcome": "no_answer", "note": "三次未接"})).json()
    assert given_up["status"] == "completed" and given_up["outcome"] == "no_answer" and given_up["attempts"] == 3
    assert (await client.post(url, json={"outcome": "reached"})).status_code == 409
    reached = await ask(client)
    done = await client.post(
        f"/v1/callbacks/{reached['id']}/complete", json={"outcome": "reached"}, headers={"X-Actor": "cs-021"}
    )
    assert done.json()["status"] == "completed" and done.json()["agent"] == "dev:cs-021"
    completed = (await client.get("/v1/callbacks", params={"status": "completed"})).json()["items"]
    assert {c["id"] for c in completed} == {callback["id"], reached["id"]}


async def test_callback_validation_and_scopes(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v1/callbacks", json={"topic": "无联系方式"})).status_code == 422
    assert (await client.post("/v1/callbacks", json={"topic": "x", "phone": "123"})).status_code == 422
    unknown_complaint = {"topic": "x", "phone": "13912345678", "complaint_id": "01234567-89ab-7def-8123-456789abcdef"}
    assert (await client.post("/v1/callbacks", json=unknown_complaint)).status_code == 422
    assert (await client.post("/v1/callbacks", json={"topic": "x", "phone": "13912345678"},
                              headers=auth("reader"))).status_code == 403  # fmt: skip


def _customer(path: str, names: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """customer-api's answer to `GET /v1/customers/{id}`: the gold customers in `names`; anyone else is unknown."""
    customer_id = path.removeprefix("/v1/customers/")
    if customer_id not in names:
        return 404, {"status": 404}
    return 200, {"id": customer_id, "name": names[customer_id], "tier": "gold", "type": "individual",
                 "created_at": "2025-03-01T08:00:00Z"}  # fmt: skip


@pytest.fixture
def customer_api_back() -> Iterator[str]:
    """A stand-in for customer-api on a real port, as the snapshot completion meets it once it is back: GOLD and
    the complaints' CUSTOMER are gold customers, anyone else is unknown (404)."""
    names = {str(GOLD): "王女士", CUSTOMER: "陈建国"}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = _customer(self.path, names)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


async def test_a_callback_asked_for_while_customer_api_is_down_gets_its_name_and_priority_later(
    client: httpx.AsyncClient, app: Any, customer_api_back: str
) -> None:
    gold = await ask(client, customer_id=str(GOLD), name=None)
    complaint = await take(client)  # taken while customer-api is down too
    about_it = await ask(client, complaint_id=complaint["id"])  # the caller gave a name: it stays
    stranger = await ask(client, customer_id=str(uuid.uuid4()), name=None)
    anonymous = await ask(client)
    for callback in (gold, about_it, stranger):
        assert (callback["snapshot_status"], callback["priority"]) == ("pending", "normal"), callback
    assert gold["name"] is None and anonymous["snapshot_status"] is None
    # Still down: the sweep's pass stops at once and changes nothing.
    settings, calendar = app.state.settings, app.state.calendar
    assert await complete_snapshots(app.state.database, app.state.customer_api, calendar, settings) == 0
    assert (await client.get(f"/v1/callbacks/{gold['id']}")).json() == gold

    async with PeerClient("customer-api", PeerConfig(base_url=customer_api_back)) as back:
        await complete_snapshots(app.state.database, back, calendar, settings)
        read = {c["id"]: (await client.get(f"/v1/callbacks/{c['id']}")).json() for c in (gold, about_it, stranger)}
        assert [(read[c["id"]]["snapshot_status"], read[c["id"]]["priority"], read[c["id"]]["name"])
                for c in (gold, about_it, stranger)] == [
            ("ok", "high", "王女士"), ("ok", "high", "陈先生"), ("unknown_customer", "normal", None)
        ]  # fmt: skip
        # The due time follows the clock and the preferred time, not the tier; the version moves with the change.
        for callback in (gold, about_it, stranger):
            assert (read[callback["id"]]["due_at"], read[callback["id"]]["version"]) == (callback["due_at"], 2)
        assert (await client.get(f"/v1/callbacks/{anonymous['id']}")).json() == anonymous
        # Nothing is left pending: a second pass changes no callback.
        again = {c["id"]: c["version"] for c in (await client.get("/v1/callbacks")).json()["items"]}
        await complete_snapshots(app.state.database, back, calendar, settings)
        assert {c["id"]: c["version"] for c in (await client.get("/v1/callbacks")).json()["items"]} == again


async def test_a_callback_retried_after_its_customer_was_erased_is_gone_as_a_complaint_is(
    client: httpx.AsyncClient, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A retry is answered from what the first request stored, before customer-api is asked about the customer
    again: once they are erased (customer-api no longer knows them), a 410 as for a complaint, not a 422."""
    customer = str(uuid.uuid4())
    names = {customer: "王女士"}

    def answer(request: httpx.Request) -> httpx.Response:
        status, body = _customer(request.url.path, names)
        return httpx.Response(status, json=body)

    config = PeerConfig(base_url="http://customer-api.test", retries=0)
    async with PeerClient("customer-api", config, transport=httpx.MockTransport(answer)) as peer:
        monkeypatch.setitem(app.state._state, "customer_api", peer)  # app.state keeps its values in _state
        callback = {"customer_id": customer, "phone": "139 0000 1111", "topic": "退货"}
        complaint = {"customer_id": customer, "channel": "phone", "category": "delivery", "severity": "low",
                     "subject": "送货晚了两天", "description": "订单承诺次日达，实际第三天才送到。"}  # fmt: skip
        asked = {path: (body, {"Idempotency-Key": f"erased-{path}"})
                 for path, body in (("/v1/callbacks", callback), ("/v1/complaints", complaint))}  # fmt: skip
        for path, (body, key) in asked.items():
            created = await client.post(path, json=body, headers=key)
            assert created.status_code == 201 and created.json()["snapshot_status"] == "ok", created.text
            replayed = await client.post(path, json=body, headers=key)
            assert replayed.headers["Idempotent-Replayed"] == "true" and replayed.content == created.content

        del names[customer]
        async with app.state.database.session_scope() as session:
            await apply_events(session, [{"type": "erased", "customer_id": customer}], app.state.calendar)
        for path, (body, key) in asked.items():
            retried = await client.post(path, json=body, headers=key)
            assert retried.status_code == 410, (path, retried.text)
            assert retried.headers["content-type"] == "application/problem+json" and "王女士" not in retried.text

        # A first request about a customer customer-api does not know is still refused, and its retry too.
        stranger = {**callback, "customer_id": str(uuid.uuid4())}
        for _ in range(2):
            refused = await client.post("/v1/callbacks", json=stranger, headers={"Idempotency-Key": "stranger"})
            assert refused.status_code == 422 and refused.json()["field"] == "customer_id", refused.text
