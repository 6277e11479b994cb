"""Identifiers absorbed in merges: a duplicate's phone, email and card number, where the survivor holds its own, still
find the survivor, stay taken, come in its reads (masked as PII) and its export, and go with its erasure."""

from __future__ import annotations

from typing import Any

import httpx
from conftest import auth
from fastapi import FastAPI
from helpers import create_customer
from sqlalchemy import func, select

from customer_api.customers.models import CustomerIdentifier


async def _merged_pair(client: httpx.AsyncClient, tag: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A survivor and the duplicate merged into it, each with a phone, email and card number of its own."""
    target = await create_customer(client, name="陈静", email=f"chen.jing.{tag}@example.com", card_number=f"NEW-{tag}")
    duplicate = await create_customer(
        client, name="陈静(旧卡)", email=f"jing.old.{tag}@example.com", card_number=f"OLD-{tag}"
    )
    merged = await client.post(f"/v1/customers/{duplicate['id']}/merge", json={"target_id": target["id"]})
    assert merged.status_code == 200, merged.text
    return merged.json(), duplicate


def _ids(page: httpx.Response) -> list[str]:
    assert page.status_code == 200, page.text
    return [c["id"] for c in page.json()["items"]]


async def test_a_merge_keeps_the_duplicates_phone_email_and_card_finding_the_survivor(
    client: httpx.AsyncClient,
) -> None:
    survivor, duplicate = await _merged_pair(client, "1001")
    assert (survivor["phone"], survivor["card_number"]) != (duplicate["phone"], duplicate["card_number"])
    assert survivor["absorbed_identifiers"] == [
        {"kind": "card_number", "value": "OLD-1001"},
        {"kind": "email", "value": "jing.old.1001@example.com"},
        {"kind": "phone", "value": duplicate["phone"]},
    ]
    # complaint-api linking a phone-only callback, in any spelling of the number
    national = duplicate["phone"].removeprefix("+86")
    for spelled in (national, f"+86 {national[:3]}-{national[3:7]}-{national[7:]}"):
        assert _ids(await client.get("/v1/customers", params={"phone": spelled})) == [survivor["id"]], spelled
    for q in ("old-1001", "OLD-1001", "Jing.Old.1001@example.com", national):
        assert _ids(await client.get("/v1/customers", params={"q": q})) == [survivor["id"]], q
    feed = (await client.get("/v1/feeds/customers")).json()["items"]
    updated = [e["data"] for e in feed if e["customer_id"] == survivor["id"] and e["type"] == "updated"]
    assert "absorbed_identifiers" in updated[-1]["fields"]
    assert "OLD-1001" not in str(feed) and "jing.old" not in str(feed) and national not in str(feed)


async def test_a_chain_of_merges_keeps_every_identifier(client: httpx.AsyncClient) -> None:
    middle, first = await _merged_pair(client, "2001")
    last = await create_customer(client, name="陈静(新档)", card_number="LAST-2001")
    merged = await client.post(f"/v1/customers/{middle['id']}/merge", json={"target_id": last["id"]})
    assert merged.status_code == 200, merged.text
    # What the middle profile had absorbed, and its own phone and card (`last` has its own); its email is carried.
    assert merged.json()["email"] == middle["email"]
    assert {(i["kind"], i["value"]) for i in merged.json()["absorbed_identifiers"]} == {
        ("card_number", "OLD-2001"),
        ("email", "jing.old.2001@example.com"),
        ("phone", first["phone"]),
        ("card_number", "NEW-2001"),
        ("phone", middle["phone"]),
    }
    for q in ("OLD-2001", "NEW-2001", "jing.old.2001@example.com", first["phone"], middle["phone"]):
        assert _ids(await client.get("/v1/customers", params={"q": q})) == [last["id"]], q


async def test_an_absorbed_identifier_is_taken_as_a_profiles_own_is(client: httpx.AsyncClient) -> None:
    survivor, duplicate = await _merged_pair(client, "3001")
    other = await create_customer(client, name="路人")
    for field, value in (
        ("phone", duplicate["phone"]),
        ("email", "JING.OLD.3001@example.com"),
        ("card_number", "old-3001"),
    ):
        created = await client.post("/v1/customers", json={"name": "李娜", field: value})
        patched = await client.patch(f"/v1/customers/{other['id']}", json={field: value})
        for response in (created, patched):
            assert response.status_code == 409, (field, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert (response.json()["field"], response.json()["existing_customer_id"]) == (field, survivor["id"])


async def test_a_survivor_takes_an_absorbed_phone_back_as_its_own(client: httpx.AsyncClient) -> None:
    survivor, duplicate = await _merged_pair(client, "4001")
    own_phone = survivor["phone"]
    patched = await client.patch(f"/v1/customers/{survivor['id']}", json={"phone": duplicate["phone"]})
    assert patched.status_code == 200, patched.text
    assert patched.json()["phone"] == duplicate["phone"]
    assert [i["kind"] for i in patched.json()["absorbed_identifiers"]] == ["card_number", "email"]
    assert _ids(await client.get("/v1/customers", params={"phone": duplicate["phone"]})) == [survivor["id"]]
    # The number it gave up is free; the one it took is still taken.
    assert (await client.post("/v1/customers", json={"name": "新人", "phone": own_phone})).status_code == 201
    taken = await client.post("/v1/customers", json={"name": "新人", "phone": duplicate["phone"]})
    assert taken.status_code == 409 and taken.json()["existing_customer_id"] == survivor["id"]


async def test_absorbed_phones_and_emails_are_masked_without_the_pii_scope(client: httpx.AsyncClient) -> None:
    survivor, duplicate = await _merged_pair(client, "5001")
    national = duplicate["phone"].removeprefix("+86")
    masked_phone = f"+86{national[:3]}****{national[-4:]}"
    masked = [
        {"kind": "card_number", "value": "OLD-5001"},  # as the profile's own card number: not masked
        {"kind": "email", "value": "j***@example.com"},
        {"kind": "phone", "value": masked_phone},
    ]
    read = (await client.get(f"/v1/customers/{survivor['id']}", headers=auth("reader"))).json()
    assert read["absorbed_identifiers"] == masked and read["pii_masked"] is True
    listed = await client.get("/v1/customers", params={"phone": national}, headers=auth("reader"))
    assert listed.json()["items"][0]["absorbed_identifiers"] == masked
    full = (await client.get(f"/v1/customers/{survivor['id']}", headers=auth("pii-reader"))).json()
    assert full["absorbed_identifiers"] == survivor["absorbed_identifiers"]
    # A restriction stops profiling, not the identifiers that find the person.
    restricted = await client.patch(f"/v1/customers/{survivor['id']}", json={"restricted": True})
    assert restricted.json()["absorbed_identifiers"] == survivor["absorbed_identifiers"]
    assert _ids(await client.get("/v1/customers", params={"phone": national})) == [survivor["id"]]


async def test_the_export_lists_the_absorbed_identifiers(client: httpx.AsyncClient) -> None:
    survivor, duplicate = await _merged_pair(client, "6001")
    export = (await client.get(f"/v1/customers/{survivor['id']}/export")).json()
    assert export["profile"]["absorbed_identifiers"] == [
        {"kind": "card_number", "value": "OLD-6001"},
        {"kind": "email", "value": "jing.old.6001@example.com"},
        {"kind": "phone", "value": duplicate["phone"]},
    ]


async def test_erasure_removes_the_absorbed_identifiers(client: httpx.AsyncClient, app: FastAPI) -> None:
    survivor, duplicate = await _merged_pair(client, "7001")
    assert _ids(await client.get("/v1/customers", params={"phone": duplicate["phone"]})) == [survivor["id"]]
    assert (await client.delete(f"/v1/customers/{survivor['id']}")).status_code == 204
    assert _ids(await client.get("/v1/customers", params={"phone": duplicate["phone"]})) == []
    for q in ("OLD-7001", "jing.old.7001@example.com"):
        assert _ids(await client.get("/v1/customers", params={"q": q})) == [], q
    async with app.state.database.session_scope(read_only=True) as session:
        assert await session.scalar(select(func.count()).select_from(CustomerIdentifier)) == 0
    # Nothing holds them any more: a new profile may take them.
    again = await client.post(
        "/v1/customers",
        json={
            "name": "新会员",
            "phone": duplicate["phone"],
            "email": "jing.old.7001@example.com",
            "card_number": "OLD-7001",
        },
    )
    assert again.status_code == 201, again.text
    assert (await client.get(f"/v1/customers/{again.json()['id']}")).json()["absorbed_identifiers"] == []
