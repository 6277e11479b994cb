"""Callback requests: due times on the business calendar, queue order, retries when nobody answers."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
from conftest import auth
from test_complaints import take


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
    preferred = await ask(client, preferred_at=later.isoformat())
    assert _at(preferred["due_at"]) == later


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
