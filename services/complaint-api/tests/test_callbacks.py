"""Callback requests: due times on the business calendar, queue order, retries when nobody answers, the customer
whose profile has the phone left alone, and the customer's name and tier filled in once customer-api, down when
the callback was asked for, answers."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from conftest import auth
from test_complaints import CUSTOMER, take

from complaint_api.complaints.jobs import complete_snapshots
from complaint_api.feeds.service import ERASED, apply_events
from crm_kit.http import PeerClient, PeerConfig
from crm_kit.phones import normalize_phone

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


async def test_a_callbacks_phone_is_masked_without_the_pii_scope(client: httpx.AsyncClient) -> None:
    """DESIGN: PII masked in lists unless the caller has the pii scope; the desk that dials holds it."""
    taken = await client.post("/v1/callbacks", json={"phone": "139 1234 5678", "topic": "退款"}, headers=auth("agent"))
    assert taken.status_code == 201, taken.text
    assert (taken.json()["phone"], taken.json()["pii_masked"]) == ("+86139****5678", True)
    url = f"/v1/callbacks/{taken.json()['id']}"
    for key, seen in (("reader", "+86139****5678"), ("agent", "+86139****5678"), ("dialler", "+8613912345678")):
        listed = (await client.get("/v1/callbacks", headers=auth(key))).json()["items"]
        assert [c["phone"] for c in listed] == [seen], key
        assert (await client.get(url, headers=auth(key))).json()["phone"] == seen, key
    completed = await client.post(f"{url}/complete", json={"outcome": "reached"}, headers=auth("agent"))
    assert completed.json()["phone"] == "+86139****5678" and "13912345678" not in completed.text


@dataclass
class Profile:
    name: str
    tier: str = "gold"
    phone: str | None = None  # E.164, as customer-api stores it


@dataclass
class CustomerApi:
    """A stand-in for customer-api as complaint-api's key (customers:read, without customers:pii) meets it: the
    profiles by id (anyone else is unknown, 404), and the search by number, `GET /v1/customers?phone=`, with
    phones masked."""

    profiles: dict[str, Profile] = field(default_factory=dict)
    url: str = ""

    def answer(self, target: str) -> tuple[int, dict[str, Any]]:
        url = httpx.URL(target)
        if url.path == "/v1/customers":
            return 200, self._search(url.params["phone"], int(url.params["limit"]))
        customer_id = url.path.removeprefix("/v1/customers/")
        if customer_id not in self.profiles:
            return 404, {"status": 404}
        return 200, self._read(customer_id)

    def _read(self, customer_id: str) -> dict[str, Any]:
        profile = self.profiles[customer_id]
        phone = profile.phone and profile.phone[:-8] + "****" + profile.phone[-4:]
        return {"id": customer_id, "name": profile.name, "tier": profile.tier, "type": "individual", "phone": phone,
                "card_number": None, "pii_masked": True, "created_at": "2025-03-01T08:00:00Z"}  # fmt: skip

    def _search(self, phone: str, limit: int) -> dict[str, Any]:
        found = [c for c, p in self.profiles.items() if p.phone == normalize_phone(phone, "CN")]
        return {"items": [self._read(c) for c in found[:limit]], "next_cursor": None}


def _gold(*names: tuple[str, str]) -> dict[str, Profile]:
    return {customer_id: Profile(name) for customer_id, name in names}


@pytest.fixture
def customer_api_back() -> Iterator[CustomerApi]:
    """The stand-in on a real port, as the snapshot completion meets it once customer-api is back: GOLD and the
    complaints' CUSTOMER are gold customers without a phone."""
    stand_in = CustomerApi(_gold((str(GOLD), "王女士"), (CUSTOMER, "陈建国")))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = stand_in.answer(self.path)
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
    stand_in.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield stand_in
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
async def customer_api_up(
    app: Any, customer_api_back: CustomerApi, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[CustomerApi]:
    """The stand-in as intake meets it: up."""
    async with PeerClient("customer-api", PeerConfig(base_url=customer_api_back.url, retries=0)) as peer:
        monkeypatch.setitem(app.state._state, "customer_api", peer)  # app.state keeps its values in _state
        yield customer_api_back


async def test_a_callback_asked_for_while_customer_api_is_down_gets_its_name_and_priority_later(
    client: httpx.AsyncClient, app: Any, customer_api_back: CustomerApi
) -> None:
    gold = await ask(client, customer_id=str(GOLD), name=None)
    complaint = await take(client)  # taken while customer-api is down too
    about_it = await ask(client, complaint_id=complaint["id"])  # the caller gave a name: it stays
    stranger = await ask(client, customer_id=str(uuid.uuid4()), name=None)
    anonymous = await ask(client)  # a phone no profile has
    for callback in (gold, about_it, stranger, anonymous):
        assert (callback["snapshot_status"], callback["priority"]) == ("pending", "normal"), callback
    assert gold["name"] is None and anonymous["customer_id"] is None
    # Still down: the sweep's pass stops at once and changes nothing.
    settings, calendar = app.state.settings, app.state.calendar
    assert await complete_snapshots(app.state.database, app.state.customer_api, calendar, settings) == 0
    assert (await client.get(f"/v1/callbacks/{gold['id']}")).json() == gold

    async with PeerClient("customer-api", PeerConfig(base_url=customer_api_back.url)) as back:
        await complete_snapshots(app.state.database, back, calendar, settings)
        asked = (gold, about_it, stranger, anonymous)
        read = {c["id"]: (await client.get(f"/v1/callbacks/{c['id']}")).json() for c in asked}
        assert [(read[c["id"]]["snapshot_status"], read[c["id"]]["priority"], read[c["id"]]["name"])
                for c in asked] == [
            ("ok", "high", "王女士"), ("ok", "high", "陈先生"), ("unknown_customer", "normal", None),
            ("no_customer", "normal", "陈先生"),
        ]  # fmt: skip
        assert read[anonymous["id"]]["customer_id"] is None
        # The due time follows the clock and the preferred time, not the tier; the version moves with the change.
        for callback in asked:
            assert (read[callback["id"]]["due_at"], read[callback["id"]]["version"]) == (callback["due_at"], 2)
        # Nothing is left pending: a second pass changes no callback.
        again = {c["id"]: c["version"] for c in (await client.get("/v1/callbacks")).json()["items"]}
        await complete_snapshots(app.state.database, back, calendar, settings)
        assert {c["id"]: c["version"] for c in (await client.get("/v1/callbacks")).json()["items"]} == again


async def test_a_callback_retried_after_its_customer_was_erased_is_gone_as_a_complaint_is(
    client: httpx.AsyncClient, app: Any, customer_api_up: CustomerApi
) -> None:
    """A retry is answered from what the first request stored, before customer-api is asked about the customer
    again: once they are erased (customer-api no longer knows them), a 410 as for a complaint, not a 422."""
    customer = str(uuid.uuid4())
    customer_api_up.profiles[customer] = Profile("王女士")
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

    del customer_api_up.profiles[customer]
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


async def test_a_callback_left_by_phone_alone_is_the_customers_whose_live_profile_has_that_number(
    client: httpx.AsyncClient, customer_api_up: CustomerApi
) -> None:
    gold = str(uuid.uuid4())
    customer_api_up.profiles[gold] = Profile("王女士", phone="+8613912345678")
    customer_api_up.profiles[str(uuid.uuid4())] = Profile("李先生", phone="+8613600002222")

    key = {"Idempotency-Key": "phone-alone"}
    body = {"phone": "139-1234-5678", "topic": "会员积分"}
    linked = await client.post("/v1/callbacks", json=body, headers=key)
    assert linked.status_code == 201, linked.text
    called = linked.json()
    # Her id and the priority of her tier, but not her name: a key that takes callbacks does not learn whose
    # number a phone is.
    assert (called["customer_id"], called["name"], called["priority"], called["snapshot_status"]) == (
        gold, None, "high", "ok"
    )  # fmt: skip
    assert called["phone"] == "+8613912345678" and called["pii_masked"] is False  # the dev key holds every scope
    # A retry replays the first answer: one callback, not two.
    replayed = await client.post("/v1/callbacks", json=body, headers=key)
    assert replayed.headers["Idempotent-Replayed"] == "true" and replayed.content == linked.content
    assert [c["id"] for c in (await client.get("/v1/callbacks")).json()["items"]] == [called["id"]]

    named = await ask(client, phone="+86 139 1234 5678", name="王女士的先生")  # the caller's own name stays
    assert (named["customer_id"], named["name"], named["priority"]) == (gold, "王女士的先生", "high")
    # A number no live profile has: the caller stays anonymous.
    nobody = await ask(client, phone="13700001111")
    assert (nobody["customer_id"], nobody["snapshot_status"], nobody["priority"]) == (None, "no_customer", "normal")
    # Two profiles with one number (customer-api refuses that; were it to answer so anyway): neither is taken.
    for twin in ("张三", "张三丰"):
        customer_api_up.profiles[str(uuid.uuid4())] = Profile(twin, phone="+8613500003333")
    shared = await ask(client, phone="13500003333")
    assert (shared["customer_id"], shared["snapshot_status"]) == (None, "no_customer")


async def test_a_phone_left_while_customer_api_was_down_is_linked_later_and_erased_with_its_customer(
    client: httpx.AsyncClient, app: Any, customer_api_back: CustomerApi
) -> None:
    customer = str(uuid.uuid4())
    key = {"Idempotency-Key": "phone-while-down"}
    body = {"name": "李先生", "phone": "13800138000", "topic": "冰箱安装预约"}
    taken = await client.post("/v1/callbacks", json=body, headers=key)
    assert taken.status_code == 201, taken.text
    waiting = taken.json()
    assert (waiting["customer_id"], waiting["snapshot_status"], waiting["priority"]) == (None, "pending", "normal")

    customer_api_back.profiles[customer] = Profile("李建国", phone="+8613800138000")
    settings, calendar, database = app.state.settings, app.state.calendar, app.state.database
    async with PeerClient("customer-api", PeerConfig(base_url=customer_api_back.url)) as back:
        assert await complete_snapshots(database, back, calendar, settings) == 1
    linked = (await client.get(f"/v1/callbacks/{waiting['id']}")).json()
    assert (linked["customer_id"], linked["name"], linked["priority"], linked["snapshot_status"]) == (
        customer, "李先生", "high", "ok"
    )  # fmt: skip
    assert (linked["due_at"], linked["version"]) == (waiting["due_at"], 2)
    exported = (await client.get(f"/v1/customers/{customer}/export")).json()
    assert [c["id"] for c in exported["callbacks"]] == [waiting["id"]]

    async with database.session_scope() as session:
        await apply_events(session, [{"type": "erased", "customer_id": customer}], calendar)
    erased = (await client.get(f"/v1/callbacks/{waiting['id']}")).json()
    assert (erased["name"], erased["phone"], erased["topic"]) == (None, None, ERASED)
    assert (erased["status"], erased["outcome"]) == ("completed", "erased")
    assert "李先生" not in (await client.get(f"/v1/customers/{customer}/export")).text
    retried = await client.post("/v1/callbacks", json=body, headers=key)  # its stored answer held her number
    assert retried.status_code == 410 and "13800138000" not in retried.text, retried.text
