"""Contact history: entries per kind, the timeline, and retries from other systems."""

from __future__ import annotations

import asyncio

import httpx
from conftest import auth
from helpers import create_customer


async def test_timeline_of_every_kind_newest_first(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    url = f"/v1/customers/{customer['id']}/interactions"
    kinds = ["visit", "call", "email", "complaint", "survey", "note", "callback"]
    for day, kind in enumerate(kinds, start=1):
        body = {"kind": kind, "occurred_at": f"2026-11-0{day}T10:00:00+08:00", "subject": f"{kind} 记录"}
        if kind == "survey":
            body["score"] = 5
        response = await client.post(url, json=body)
        assert response.status_code == 201, response.text
    timeline = (await client.get(url)).json()["items"]
    assert [i["kind"] for i in timeline] == list(reversed(kinds))
    assert timeline[2]["score"] == 5
    surveys = (await client.get(url, params={"kind": "survey"})).json()["items"]
    assert [s["kind"] for s in surveys] == ["survey"]
    seen, cursor = [], None
    while True:
        page = (await client.get(url, params={"limit": 3, **({"cursor": cursor} if cursor else {})})).json()
        seen += [i["kind"] for i in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == list(reversed(kinds))


async def test_a_recorded_entry_is_found_at_its_location(client: httpx.AsyncClient) -> None:
    customer, other = await create_customer(client), await create_customer(client, name="别人")
    recorded = await client.post(
        f"/v1/customers/{customer['id']}/interactions", json={"kind": "call", "subject": "回访"}
    )
    assert recorded.status_code == 201
    found = await client.get(recorded.headers["location"])
    assert found.status_code == 200 and found.json() == recorded.json()
    elsewhere = recorded.headers["location"].replace(customer["id"], other["id"])
    assert (await client.get(elsewhere)).status_code == 404  # another customer's timeline does not hold it


async def test_survey_needs_a_score_between_one_and_five(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    url = f"/v1/customers/{customer['id']}/interactions"
    assert (await client.post(url, json={"kind": "survey"})).status_code == 422
    assert (await client.post(url, json={"kind": "survey", "score": 6})).status_code == 422
    assert (await client.post(url, json={"kind": "note", "source": "complaint-api"})).status_code == 422


async def test_a_source_record_is_stored_once_however_often_it_is_sent(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    url = f"/v1/customers/{customer['id']}/interactions"
    body = {"kind": "complaint", "subject": "投诉已受理", "source": "complaint-api", "external_id": "C20261123-0007"}
    responses = await asyncio.gather(*(client.post(url, json=body) for _ in range(6)))
    assert sorted(r.status_code for r in responses) == [200] * 5 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert len((await client.get(url)).json()["items"]) == 1


async def test_a_source_record_is_neither_shown_to_nor_changed_by_another_request(client: httpx.AsyncClient) -> None:
    a, b = await create_customer(client), await create_customer(client)
    body = {"kind": "survey", "score": 5, "note": "A 的评价", "source": "survey-app", "external_id": "S-0042"}
    assert (await client.post(f"/v1/customers/{a['id']}/interactions", json=body)).status_code == 201
    for who, sent in ((b, body), (b, {**body, "note": "B 的评价", "score": 2}), (a, {**body, "score": 1})):
        response = await client.post(f"/v1/customers/{who['id']}/interactions", json=sent)
        assert response.status_code == 409, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "A 的评价" not in response.text and (who is a or a["id"] not in response.text)
    assert (await client.get(f"/v1/customers/{b['id']}/interactions")).json()["items"] == []
    stored = (await client.get(f"/v1/customers/{a['id']}/interactions")).json()["items"]
    assert [(i["score"], i["note"]) for i in stored] == [(5, "A 的评价")]


async def test_idempotency_key_replays_and_rejects_a_different_body(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    url = f"/v1/customers/{customer['id']}/interactions"
    key = {"Idempotency-Key": "call-2026-11-23-001"}
    first = await client.post(url, json={"kind": "call", "note": "首次"}, headers=key)
    replay = await client.post(url, json={"note": "首次", "kind": "call"}, headers=key)
    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json() and replay.headers["idempotent-replayed"] == "true"
    other = await client.post(url, json={"kind": "call", "note": "不同"}, headers=key)
    assert other.status_code == 422
    assert len((await client.get(url)).json()["items"]) == 1


async def test_scopes(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    url = f"/v1/customers/{customer['id']}/interactions"
    assert (await client.post(url, json={"kind": "note"}, headers=auth("reader"))).status_code == 403
    assert (await client.get(url, headers=auth("reader"))).status_code == 403
