"""The PIPL export over HTTP: every piece of a customer's complaints, callbacks and recovery, nobody else's, in a
fixed number of queries; the scope it needs; merged and erased customers."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from conftest import auth
from sqlalchemy import event
from test_complaints import step, take

from complaint_api.feeds.service import ERASED, apply_events
from crm_kit.context import request_id
from crm_kit.http import PeerClient, PeerConfig

NAME = "王芳"
# What the customer said and what was written about them: all of it is in the export, none of it after erasure.
SAID = {
    "subject": "牛奶开盖就是酸的",
    "description": "11月20日在静安店买的鲜牛奶，我女儿喝了一口就吐了。",
    "internal": "顾客情绪激动，要求店长亲自回电",
    "public": "王女士您好，我们已在核查该批次牛奶。",
    "reply": "王女士您好，已为您全额退款并补偿50元券。",
    "comment": "退款太慢了，等了三天",
    "topic": "想问退款什么时候到账",
    "callback_note": "已告知退款三个工作日内到账",
    "caller": "王女士的丈夫",
    "action_note": "店长已致电致歉",
    "follow_up_note": "顾客说下周还会来买",
}


@pytest.fixture
async def customer_api(app: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[dict[str, str]]:
    """customer-api as intake meets it: every customer is a gold individual called NAME; the search by phone finds
    the customers of the phones (E.164) the test puts in the dict yielded; nothing else is found."""
    phones: dict[str, str] = {}

    def profile(customer_id: str, phone: str | None = None) -> dict[str, Any]:
        masked = phone and phone[:-8] + "****" + phone[-4:]  # as for a key without customers:pii
        return {"id": customer_id, "name": NAME, "tier": "gold", "type": "individual", "phone": masked,
                "pii_masked": True, "created_at": "2025-03-01T08:00:00Z"}  # fmt: skip

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path == "/v1/customers":
            phone = request.url.params["phone"]
            found = [profile(phones[phone], phone)] if phone in phones else []
            return httpx.Response(200, json={"items": found, "next_cursor": None})
        customer_id = request.url.path.removeprefix("/v1/customers/")
        if request.method != "GET" or "/" in customer_id:
            return httpx.Response(404, json={"status": 404})
        return httpx.Response(200, json=profile(customer_id))

    config = PeerConfig(base_url="http://customer-api.test", retries=0)
    async with PeerClient("customer-api", config, transport=httpx.MockTransport(answer)) as peer:
        monkeypatch.setitem(app.state._state, "customer_api", peer)  # app.state keeps its values in _state
        yield phones


async def export(client: httpx.AsyncClient, customer_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/customers/{customer_id}/export")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


async def file_of(client: httpx.AsyncClient, customer_id: str) -> dict[str, Any]:
    """A customer's complaint taken, escalated, resolved, replied, closed and rated, with notes both ways, a plan
    with a done action and a scored follow-up, a callback of their own and one by phone about the complaint; and
    a second complaint with a plan of its own. Returns the first complaint."""
    complaint = await take(
        client, customer_id=customer_id, subject=SAID["subject"], description=SAID["description"], severity="low"
    )
    assert complaint["customer_snapshot"]["name"] == NAME
    plan = await ok(await client.post(
        f"/v1/complaints/{complaint['id']}/recovery",
        json={"owner_id": "staff-017", "actions": [{"type": "apology"}, {"type": "coupon", "value": "50.00"}]},
    ))  # fmt: skip
    await ok(
        await client.post(
            f"/v1/recovery-plans/{plan['id']}/actions/{plan['actions'][0]['id']}/complete",
            json={"note": SAID["action_note"]},
        )
    )
    await ok(await step(client, complaint, "escalate", note=SAID["internal"]))
    for visibility in ("internal", "public"):
        note = {"note": SAID[visibility], "visibility": visibility}
        await ok(await client.post(f"/v1/complaints/{complaint['id']}/notes", json=note))
    await ok(await step(client, complaint, "resolution"))
    await ok(await step(client, complaint, "reply", message=SAID["reply"]))
    await ok(await step(client, complaint, "close"))
    rating = {"score": 2, "reason_code": "speed", "comment": SAID["comment"]}
    await ok(await client.post(f"/v1/complaints/{complaint['id']}/satisfaction", json=rating))
    follow_up = (await ok(await client.get(f"/v1/recovery-plans/{plan['id']}")))["follow_ups"][0]
    await ok(
        await client.post(
            f"/v1/recovery-plans/{plan['id']}/follow-ups/{follow_up['id']}",
            json={"satisfaction": 4, "note": SAID["follow_up_note"]},
        )
    )
    own = await ok(await client.post(
        "/v1/callbacks", json={"customer_id": customer_id, "topic": SAID["topic"], "complaint_id": complaint["id"]}
    ))  # fmt: skip
    await ok(await client.post(
        f"/v1/callbacks/{own['id']}/complete", json={"outcome": "reached", "note": SAID["callback_note"]}
    ))  # fmt: skip
    by_phone = {"name": SAID["caller"], "phone": "139 8765 4321", "topic": "退款", "complaint_id": complaint["id"]}
    await ok(await client.post("/v1/callbacks", json=by_phone))
    second = await take(client, customer_id=customer_id, category="delivery", severity="low")
    await ok(await client.post(f"/v1/complaints/{second['id']}/recovery", json={}))
    return complaint


async def test_the_export_holds_every_piece_of_the_customer_and_nothing_of_others(
    client: httpx.AsyncClient, app: Any, customer_api: dict[str, str]
) -> None:
    customer, other = str(uuid.uuid4()), str(uuid.uuid4())
    theirs = await take(client, customer_id=other, subject="别人的投诉", description="另一位顾客说的话")
    await ok(await client.post("/v1/callbacks", json={"customer_id": other, "topic": "别人的回电"}))
    complaint = await file_of(client, customer)

    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if request_id.get() == "export-under-test":  # not the background sweeps' statements
            statements.append(statement)

    engine = app.state.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        response = await client.get(f"/v1/customers/{customer}/export", headers={"X-Request-ID": "export-under-test"})
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert response.status_code == 200, response.text
    document = response.json()
    # One query per table, however many complaints and plans: complaints, their events, callbacks, plans, the
    # plans' actions, their follow-ups, contact records.
    assert len(statements) == 7 and all(s.lstrip().upper().startswith("SELECT") for s in statements), statements

    text = json.dumps(document, ensure_ascii=False)
    for said in SAID.values():
        assert said in text, said
    assert "别人" not in text and "另一位" not in text and theirs["id"] not in text and other not in text
    assert document["customer_id"] == customer and document["exported_at"]
    assert {k: v for k, v in document["counts"].items() if k != "timeline_events"} == {
        "complaints": 2, "callbacks": 2, "recovery_plans": 2, "contact_records": 5
    }  # fmt: skip  # contact records: two intakes, one close, the action done, the follow-up's score

    first = document["complaints"][0]
    assert first["id"] == complaint["id"] and first["customer_snapshot"]["name"] == NAME
    assert first["satisfaction"]["comment"] == SAID["comment"] and first["satisfaction"]["score"] == 2
    notes = {(e["visibility"], e["note"]) for e in first["timeline"]}
    assert {("internal", SAID["internal"]), ("public", SAID["public"]), ("public", SAID["reply"])} <= notes
    assert document["counts"]["timeline_events"] == sum(len(c["timeline"]) for c in document["complaints"])
    assert {c["name"] for c in document["callbacks"]} == {NAME, SAID["caller"]}
    assert "+8613987654321" in {c["phone"] for c in document["callbacks"]}
    plan = next(p for p in document["recovery_plans"] if p["complaint_id"] == complaint["id"])
    assert plan["actions"][0]["note"] == SAID["action_note"]
    assert (plan["follow_ups"][0]["satisfaction"], plan["follow_ups"][0]["note"]) == (4, SAID["follow_up_note"])
    assert f"complaint:{complaint['id']}:opened" in {r["external_id"] for r in document["contact_records"]}

    # Another customer's export is theirs alone.
    others = await export(client, other)
    assert others["counts"]["complaints"] == 1 and others["counts"]["callbacks"] == 1
    assert SAID["subject"] not in json.dumps(others, ensure_ascii=False)


async def test_an_id_complaint_api_holds_nothing_about_gets_an_empty_document(client: httpx.AsyncClient) -> None:
    stranger = str(uuid.uuid4())
    document = await export(client, stranger)
    assert document["customer_id"] == stranger
    assert set(document["counts"].values()) == {0}
    assert [document[k] for k in ("complaints", "callbacks", "recovery_plans", "contact_records")] == [[]] * 4
    bad = await client.get("/v1/customers/not-an-id/export")
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"


async def test_the_export_needs_the_scope_customer_api_asks_for_its_own(
    client: httpx.AsyncClient, customer_api: dict[str, str]
) -> None:
    customer = str(uuid.uuid4())
    await take(client, customer_id=customer)
    for key in ("reader", "agent"):  # complaints:read reads complaints one by one, not a whole person's file
        refused = await client.get(f"/v1/customers/{customer}/export", headers=auth(key))
        assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["required_scope"] == "customers:pii" and NAME not in refused.text
    anonymous = await client.get(f"/v1/customers/{customer}/export", headers={"Authorization": ""})
    assert anonymous.status_code == 401


async def test_a_survivor_exports_what_was_held_under_the_ids_merged_into_it(
    client: httpx.AsyncClient, app: Any, customer_api: dict[str, str]
) -> None:
    duplicate, survivor = str(uuid.uuid4()), str(uuid.uuid4())
    complaint = await take(client, customer_id=duplicate, subject=SAID["subject"])
    await ok(await client.post("/v1/callbacks", json={"customer_id": duplicate, "topic": SAID["topic"]}))
    await ok(await client.post(f"/v1/complaints/{complaint['id']}/recovery", json={}))
    merged = {"type": "merged", "customer_id": duplicate, "data": {"merged_into": survivor}}
    async with app.state.database.session_scope() as session:
        await apply_events(session, [merged], app.state.calendar)

    document = await export(client, survivor)
    assert [c["id"] for c in document["complaints"]] == [complaint["id"]]
    assert document["counts"]["callbacks"] == 1 and document["counts"]["recovery_plans"] == 1
    assert document["counts"]["contact_records"] == 1
    assert set((await export(client, duplicate))["counts"].values()) == {0}


async def test_after_erasure_the_export_shows_the_anonymised_remains_without_personal_text(
    client: httpx.AsyncClient, app: Any, customer_api: dict[str, str]
) -> None:
    customer = str(uuid.uuid4())
    complaint = await file_of(client, customer)
    async with app.state.database.session_scope() as session:
        await apply_events(session, [{"type": "erased", "customer_id": customer}], app.state.calendar)

    document = await export(client, customer)
    text = json.dumps(document, ensure_ascii=False)
    for said in (*SAID.values(), NAME, "+8613987654321"):
        assert said not in text, said
    # What stays for the statistics: the complaints, their course and scores, the plans and their outcome.
    counts = document["counts"]
    assert (counts["complaints"], counts["callbacks"], counts["recovery_plans"]) == (2, 2, 2)
    assert counts["contact_records"] == 0  # deleted: customer-api refuses them now
    first = document["complaints"][0]
    assert first["id"] == complaint["id"] and first["number"] == complaint["number"]
    assert all((c["subject"], c["description"], c["customer_snapshot"]) == (ERASED, ERASED, {})
               for c in document["complaints"])  # fmt: skip
    assert first["satisfaction"]["score"] == 2 and first["satisfaction"]["comment"] is None
    assert first["status"] == "closed" and all(e["note"] is None for e in first["timeline"])
    assert all((c["name"], c["phone"], c["note"], c["topic"]) == (None, None, None, ERASED)
               for c in document["callbacks"])  # fmt: skip


async def test_a_callback_left_by_phone_alone_is_in_the_export_of_the_customer_with_that_number(
    client: httpx.AsyncClient, app: Any, customer_api: dict[str, str]
) -> None:
    customer = str(uuid.uuid4())
    customer_api["+8613987654321"] = customer
    await take(client, customer_id=customer, subject=SAID["subject"])
    by_phone = {"name": SAID["caller"], "phone": "139 8765 4321", "topic": SAID["topic"]}
    callback = await ok(await client.post("/v1/callbacks", json=by_phone))
    assert callback["customer_id"] == customer
    stranger = {"name": "路人", "phone": "139 0000 2222", "topic": "别人的回电"}
    assert (await ok(await client.post("/v1/callbacks", json=stranger)))["customer_id"] is None

    document = await export(client, customer)
    assert [c["id"] for c in document["callbacks"]] == [callback["id"]]
    text = json.dumps(document, ensure_ascii=False)
    assert all(said in text for said in (SAID["caller"], SAID["topic"], "+8613987654321")) and "别人" not in text

    async with app.state.database.session_scope() as session:
        await apply_events(session, [{"type": "erased", "customer_id": customer}], app.state.calendar)
    remains = await export(client, customer)
    assert remains["counts"]["callbacks"] == 1
    text = json.dumps(remains, ensure_ascii=False)
    assert all(said not in text for said in (SAID["caller"], SAID["topic"], "+8613987654321"))
