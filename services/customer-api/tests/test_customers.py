"""Customer profiles: create, read, search, update, duplicates, merge, reassign, erasure, export, feed."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from conftest import auth
from fastapi import FastAPI
from helpers import create_customer, next_phone, order
from sqlalchemy import insert

from customer_api.customers.models import Customer


async def test_create_normalises_and_returns_etag_and_location(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/customers",
        json={
            "type": "group",
            "name": "上海华联超市采购部",
            "phone": "+86 138-0013-8000",
            "email": "Buyer@Example.COM",
            "card_number": "VIP-0001",
            "tags": ["团购", "团购", "年节"],
            "attributes": {"employees": 120, "vat": True},
            "owner_id": "staff-017",
            "credit_rating": "AA",
            "consents": {"marketing": {"status": "granted", "source": "app"}},
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert body["phone"] == "+8613800138000"
    assert body["email"] == "buyer@example.com"
    assert body["tags"] == ["团购", "年节"]
    assert body["type"] == "group" and body["status"] == "active" and body["tier"] == "regular"
    assert body["consents"]["marketing"]["status"] == "granted"
    assert response.headers["etag"] == '"1"'
    assert response.headers["location"] == f"/v1/customers/{body['id']}"
    read = await client.get(response.headers["location"])
    assert read.status_code == 200 and read.json()["name"] == "上海华联超市采购部"


async def test_mainland_numbers_as_typed_are_one_customer(client: httpx.AsyncClient) -> None:
    await create_customer(client, phone="13912345678")
    for typed in ("139 1234 5678", "+8613912345678", "0086 139-1234-5678"):
        response = await client.post("/v1/customers", json={"name": "李娜", "phone": typed})
        assert response.status_code == 409, typed


async def test_duplicate_phone_email_or_card_names_the_existing_customer(client: httpx.AsyncClient) -> None:
    first = await create_customer(client, email="li.na@example.com", card_number="CARD-7788")
    for field, value in (("phone", first["phone"]), ("email", "LI.NA@example.com"), ("card_number", "CARD-7788")):
        response = await client.post("/v1/customers", json={"name": "李娜", field: value})
        assert response.status_code == 409
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["existing_customer_id"] == first["id"]
        assert response.json()["field"] == field


async def test_a_card_number_is_one_card_in_any_case(client: httpx.AsyncClient) -> None:
    first = await create_customer(client, name="卡A", card_number="vip8824f301")
    assert first["card_number"] == "VIP8824F301"
    for typed in ("VIP8824F301", "Vip8824f301", " vip8824f301 "):
        response = await client.post("/v1/customers", json={"name": "卡B", "card_number": typed})
        assert response.status_code == 409, typed
        assert response.json()["existing_customer_id"] == first["id"] and response.json()["field"] == "card_number"
    other = await create_customer(client, name="卡C")
    patched = await client.patch(f"/v1/customers/{other['id']}", json={"card_number": "vIP8824F301"})
    assert patched.status_code == 409 and patched.json()["existing_customer_id"] == first["id"]
    for q in ("vip8824f301", "VIP8824F301"):
        found = (await client.get("/v1/customers", params={"q": q})).json()["items"]
        assert [c["id"] for c in found] == [first["id"]], q


async def test_concurrent_creates_with_one_phone_make_one_profile(client: httpx.AsyncClient) -> None:
    phone = next_phone()
    responses = await asyncio.gather(
        *(client.post("/v1/customers", json={"name": f"王{i}", "phone": phone}) for i in range(8))
    )
    assert sorted(r.status_code for r in responses) == [201] + [409] * 7
    found = await client.get("/v1/customers", params={"q": phone})
    assert len(found.json()["items"]) == 1


async def test_pii_is_masked_without_the_pii_scope(client: httpx.AsyncClient) -> None:
    created = await create_customer(
        client,
        phone="13712345678",
        email="zhao.lei@example.com",
        birthday="1990-03-15",
        address={"province": "浙江省", "city": "杭州市", "district": "西湖区", "street": "文三路90号"},
    )
    masked = (await client.get(f"/v1/customers/{created['id']}", headers=auth("reader"))).json()
    assert masked["phone"] == "+86137****5678"
    assert masked["email"] == "z***@example.com"
    assert masked["birthday"] is None
    assert masked["address"] == {"province": "浙江省", "city": "杭州市"}
    assert masked["pii_masked"] is True
    listed = (await client.get("/v1/customers", headers=auth("reader"))).json()["items"]
    assert all("5678" not in (c["phone"] or "")[:-4] and c["pii_masked"] for c in listed)
    full = (await client.get(f"/v1/customers/{created['id']}", headers=auth("pii-reader"))).json()
    assert full["phone"] == "+8613712345678" and full["birthday"] == "1990-03-15"
    assert full["address"]["street"] == "文三路90号" and full["pii_masked"] is False


async def test_search_filters_and_pages(client: httpx.AsyncClient) -> None:
    for i in range(5):
        await create_customer(client, name=f"陈静{i}", owner_id="staff-1", tags=["母婴"] if i % 2 == 0 else [])
    await create_customer(client, name="供应商甲", type="supplier", owner_id="staff-2", card_number="SUP-001")
    await create_customer(
        client, name="营销对象", consents={"marketing": {"status": "granted"}}, email="ok@example.com"
    )

    async def ids(**params: object) -> list[str]:
        response = await client.get("/v1/customers", params=params)
        assert response.status_code == 200, response.text
        return [c["name"] for c in response.json()["items"]]

    assert sorted(await ids(q="陈静")) == [f"陈静{i}" for i in range(5)]
    assert await ids(type="supplier") == ["供应商甲"]
    assert await ids(q="SUP-001") == ["供应商甲"]
    assert await ids(q="OK@example.com") == ["营销对象"]
    assert sorted(await ids(tag="母婴")) == ["陈静0", "陈静2", "陈静4"]
    assert await ids(owner_id="staff-2") == ["供应商甲"]
    assert await ids(consent="marketing") == ["营销对象"]
    assert await ids(tier="gold") == []

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, "owner_id": "staff-1", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/customers", params=params)).json()
        seen += [c["name"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == [f"陈静{i}" for i in range(5)] and len(seen) == 5


async def test_a_name_in_latin_letters_is_found_in_any_case_on_every_backend(client: httpx.AsyncClient) -> None:
    supplier = await create_customer(client, name="Carrefour Shanghai 100%", type="supplier")
    for q in ("carrefour", "CARREFOUR", "shanghai 100%", "Carrefour"):
        found = (await client.get("/v1/customers", params={"q": q})).json()["items"]
        assert [c["id"] for c in found] == [supplier["id"]], q
    assert (await client.get("/v1/customers", params={"q": "carrefour_"})).json()["items"] == []


async def test_an_email_is_found_in_every_spelling_that_registers_as_it(client: httpx.AsyncClient) -> None:
    buyer = await create_customer(client, email="Li.Na@Bücher.de")
    assert buyer["email"] == "li.na@bücher.de"
    for q in ("li.na@xn--bcher-kva.de", "LI.NA@BÜCHER.DE", " li.na@bücher.de"):
        assert (await client.post("/v1/customers", json={"name": "李娜", "email": q})).status_code == 409, q
        found = (await client.get("/v1/customers", params={"q": q})).json()["items"]
        assert [c["id"] for c in found] == [buyer["id"]], q


async def test_the_phone_filter_finds_that_number_only(client: httpx.AsyncClient) -> None:
    """A peer asking whose number a caller left (complaint-api's callbacks) must not get a profile whose name or
    card merely holds the digits, as `q` would."""
    owner = await create_customer(client, name="王芳", phone="13812345678")
    await create_customer(client, name="客户13812345678", card_number="13812345678")
    reader = auth("reader")  # customers:read only: phones come masked, the filter still works
    for spelled in ("13812345678", "+86 138-1234-5678", "008613812345678"):
        found = (await client.get("/v1/customers", params={"phone": spelled}, headers=reader)).json()["items"]
        assert [c["id"] for c in found] == [owner["id"]], spelled
    assert (await client.get("/v1/customers", params={"phone": "13912345678"})).json()["items"] == []
    refused = await client.get("/v1/customers", params={"phone": "not-a-number"})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "query.phone", refused.text


async def test_patch_with_if_match(client: httpx.AsyncClient) -> None:
    created = await create_customer(client)
    url = f"/v1/customers/{created['id']}"
    ok = await client.patch(url, json={"name": "张伟伟", "tags": ["VIP"]}, headers={"If-Match": '"1"'})
    assert ok.status_code == 200 and ok.headers["etag"] == '"2"'
    assert ok.json()["name"] == "张伟伟" and ok.json()["version"] == 2
    stale = await client.patch(url, json={"name": "旧版本"}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412 and stale.json()["current_version"] == 2
    assert (await client.get(url)).json()["name"] == "张伟伟"
    unconditional = await client.patch(url, json={"owner_id": "staff-9"})
    assert unconditional.status_code == 200 and unconditional.json()["version"] == 3
    unchanged = await client.patch(url, json={"owner_id": "staff-9"})
    assert unchanged.json()["version"] == 3


async def test_patch_to_a_taken_phone_is_a_conflict(client: httpx.AsyncClient) -> None:
    a = await create_customer(client)
    b = await create_customer(client)
    response = await client.patch(f"/v1/customers/{b['id']}", json={"phone": a["phone"]})
    assert response.status_code == 409 and response.json()["existing_customer_id"] == a["id"]


async def test_twenty_concurrent_patches_one_wins_per_version_and_none_is_lost(client: httpx.AsyncClient) -> None:
    created = await create_customer(client)
    url = f"/v1/customers/{created['id']}"
    racing = await asyncio.gather(
        *(client.patch(url, json={"attributes": {"writer": i}}, headers={"If-Match": '"1"'}) for i in range(20))
    )
    assert sorted(r.status_code for r in racing) == [200] + [412] * 19

    async def add_tag(tag: str) -> int:
        attempts = 0
        while True:
            attempts += 1
            current = await client.get(url)
            tags = [*current.json()["tags"], tag]
            response = await client.patch(url, json={"tags": tags}, headers={"If-Match": current.headers["etag"]})
            if response.status_code == 200:
                return attempts
            assert response.status_code == 412

    await asyncio.gather(*(add_tag(f"t{i}") for i in range(20)))
    final = (await client.get(url)).json()
    assert sorted(final["tags"]) == sorted(f"t{i}" for i in range(20))
    assert final["version"] == 2 + 20


async def test_restriction_and_consent_changes_are_feed_events(client: httpx.AsyncClient) -> None:
    created = await create_customer(client, consents={"profiling": {"status": "granted"}})
    url = f"/v1/customers/{created['id']}"
    await client.patch(url, json={"restricted": True, "consents": {"profiling": {"status": "withdrawn"}}})
    body = (await client.get(url)).json()
    assert body["restricted"] is True and body["consents"]["profiling"]["status"] == "withdrawn"
    events = (await client.get("/v1/feeds/customers")).json()["items"]
    types = [e["type"] for e in events if e["customer_id"] == created["id"]]
    assert types == ["created", "updated", "consent_changed", "restricted"]
    assert [e["data"] for e in events if e["type"] == "consent_changed"] == [{"profiling": "withdrawn"}]


async def test_reassign_moves_every_customer_of_an_owner(client: httpx.AsyncClient) -> None:
    mine = [await create_customer(client, owner_id="staff-leaving") for _ in range(3)]
    other = await create_customer(client, owner_id="staff-staying")
    response = await client.post(
        "/v1/customers/reassign", json={"from_owner_id": "staff-leaving", "to_owner_id": "staff-new"}
    )
    assert response.status_code == 200 and response.json()["moved"] == 3
    for customer in mine:
        moved = (await client.get(f"/v1/customers/{customer['id']}")).json()
        assert moved["owner_id"] == "staff-new" and moved["version"] == 2
    assert (await client.get(f"/v1/customers/{other['id']}")).json()["owner_id"] == "staff-staying"
    again = await client.post(
        "/v1/customers/reassign", json={"from_owner_id": "staff-leaving", "to_owner_id": "staff-new"}
    )
    assert again.json()["moved"] == 0


async def test_reassign_moves_more_customers_than_one_statement_takes_parameters(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    """A store's whole membership can belong to one manager. Sending the moved ids back as parameters stopped at
    asyncpg's 32,767: PostgreSQL answered 503 'retry shortly', every time."""
    many = 32_768 + 100
    rows = [{"id": uuid.uuid4(), "type": "individual", "name": f"会员{i}", "owner_id": "store-17"} for i in range(many)]
    async with app.state.database.session_scope() as session:
        await session.execute(insert(Customer), rows)
    response = await client.post(
        "/v1/customers/reassign", json={"from_owner_id": "store-17", "to_owner_id": "store-18"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["moved"] == many
    moved = (await client.get(f"/v1/customers/{rows[-1]['id']}")).json()
    assert moved["owner_id"] == "store-18" and moved["version"] == 2
    changes = (await client.get("/v1/feeds/customers", params={"limit": 1000})).json()["items"]
    assert {e["type"] for e in changes} == {"updated"} and len(changes) == 1000


async def test_an_empty_phone_or_email_is_none_and_collides_with_nothing(client: httpx.AsyncClient) -> None:
    for blank in ("", "   ", ""):
        response = await client.post("/v1/customers", json={"name": "表单客户", "phone": blank, "email": blank})
        assert response.status_code == 201, response.text
        assert (response.json()["phone"], response.json()["email"]) == (None, None)
    with_phone = await create_customer(client)
    url = f"/v1/customers/{with_phone['id']}"
    cleared = await client.patch(url, json={"phone": "", "email": " "})
    assert cleared.status_code == 200, cleared.text
    assert (cleared.json()["phone"], cleared.json()["email"]) == (None, None)


async def test_merge_moves_history_and_leaves_a_tombstone(client: httpx.AsyncClient) -> None:
    target = await create_customer(client, name="刘洋", tags=["会员"])
    duplicate = await create_customer(
        client, name="刘洋(重复)", email="liu.yang@example.com", card_number="CARD-5501", tags=["母婴"]
    )
    await client.post("/v1/purchases", json=order(duplicate["id"], order_id="M-1"))
    await client.post(f"/v1/customers/{duplicate['id']}/interactions", json={"kind": "note", "note": "喜欢有机食品"})

    merged = await client.post(f"/v1/customers/{duplicate['id']}/merge", json={"target_id": target["id"]})
    assert merged.status_code == 200
    body = merged.json()
    assert body["id"] == target["id"] and body["email"] == "liu.yang@example.com"
    assert body["card_number"] == "CARD-5501" and sorted(body["tags"]) == ["会员", "母婴"]

    old = await client.get(f"/v1/customers/{duplicate['id']}")
    assert old.status_code == 308
    assert old.headers["location"] == f"/v1/customers/{target['id']}"
    assert old.json()["merged_into"] == target["id"]

    purchases = (await client.get(f"/v1/customers/{target['id']}/purchases")).json()["items"]
    assert [p["order_id"] for p in purchases] == ["M-1"]
    notes = (await client.get(f"/v1/customers/{target['id']}/interactions")).json()["items"]
    assert [n["note"] for n in notes] == ["喜欢有机食品"]
    # New writes under the old id follow the merge.
    late = await client.post("/v1/purchases", json=order(duplicate["id"], order_id="M-2"))
    assert late.status_code == 201 and late.json()["customer_id"] == target["id"]
    # The tombstone keeps no personal data: search finds only the survivor.
    found = (await client.get("/v1/customers", params={"q": "刘洋"})).json()["items"]
    assert [c["id"] for c in found] == [target["id"]]
    feed = (await client.get("/v1/feeds/customers")).json()["items"]
    assert {"type": "merged", "data": {"merged_into": target["id"]}} in [
        {"type": e["type"], "data": e["data"]} for e in feed if e["customer_id"] == duplicate["id"]
    ]
    assert "刘洋" not in str(feed) and "liu.yang" not in str(feed)
    # Erasing the old id is not redirected: a client following a 308 would erase the survivor.
    erase = await client.delete(f"/v1/customers/{duplicate['id']}", follow_redirects=True)
    assert erase.status_code == 409 and erase.json()["merged_into"] == target["id"]
    assert (await client.get(f"/v1/customers/{target['id']}")).status_code == 200


async def test_reads_under_a_merged_id_redirect_to_the_same_resource_of_the_survivor(
    client: httpx.AsyncClient,
) -> None:
    target = await create_customer(client, name="周敏")
    duplicate = await create_customer(client, name="周敏(重复)")
    await client.post("/v1/purchases", json=order(duplicate["id"], order_id="R-1"))
    note = await client.post(f"/v1/customers/{duplicate['id']}/interactions", json={"kind": "note", "note": "常买酸奶"})
    assert (await client.post(f"/v1/customers/{duplicate['id']}/merge", json={"target_id": target["id"]})).is_success
    old, new = f"/v1/customers/{duplicate['id']}", f"/v1/customers/{target['id']}"
    for suffix in ("/purchases?limit=5", "/interactions", f"/interactions/{note.json()['id']}", "/value", "/export"):
        moved = await client.get(old + suffix)
        assert moved.status_code == 308 and moved.headers["location"] == new + suffix, suffix
        assert moved.json()["merged_into"] == target["id"]
    purchases = await client.get(old + "/purchases", follow_redirects=True)
    assert [p["order_id"] for p in purchases.json()["items"]] == ["R-1"]
    notes = await client.get(f"/v1/customers/{duplicate['id'].upper()}/interactions", follow_redirects=True)
    assert [n["note"] for n in notes.json()["items"]] == ["常买酸奶"]
    # A write is led to the surviving profile itself: repeated at its /merge, a merge would fold the survivor away.
    other = await create_customer(client, name="周敏(另一个)")
    again = await client.post(f"{old}/merge", json={"target_id": other["id"]})
    assert again.status_code == 308 and again.headers["location"] == new
    assert (await client.patch(old, json={"tags": ["x"]})).headers["location"] == new


async def test_a_signup_retried_after_its_profile_was_merged_or_erased_creates_nothing(
    client: httpx.AsyncClient,
) -> None:
    target = await create_customer(client, name="冯静")
    signups = {}
    for key in ("signup-merged-0001", "signup-erased-0001"):
        body = {"name": "冯静(重复)", "phone": "139" + key[-4:] + ("1111" if "merged" in key else "2222")}
        first = await client.post("/v1/customers", json=body, headers={"Idempotency-Key": key})
        assert first.status_code == 201, first.text
        signups[key] = (body, first.json()["id"])
    merged_body, merged_id = signups["signup-merged-0001"]
    erased_body, erased_id = signups["signup-erased-0001"]
    assert (await client.post(f"/v1/customers/{merged_id}/merge", json={"target_id": target["id"]})).status_code == 200
    assert (await client.delete(f"/v1/customers/{erased_id}")).status_code == 204

    retried = await client.post("/v1/customers", json=merged_body, headers={"Idempotency-Key": "signup-merged-0001"})
    assert retried.status_code == 409 and retried.headers["location"] == f"/v1/customers/{merged_id}"
    assert (await client.get(retried.headers["location"])).headers["location"] == f"/v1/customers/{target['id']}"
    retried = await client.post("/v1/customers", json=erased_body, headers={"Idempotency-Key": "signup-erased-0001"})
    assert retried.status_code == 410 and "冯静" not in retried.text
    assert [c["id"] for c in (await client.get("/v1/customers", params={"q": "冯静"})).json()["items"]] == [
        target["id"]
    ]
    # The key still guards its own body only.
    other = await client.post("/v1/customers", json={"name": "别人"}, headers={"Idempotency-Key": "signup-erased-0001"})
    assert other.status_code == 422


async def test_merge_rejects_self_and_unknown_targets(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    itself = await client.post(f"/v1/customers/{customer['id']}/merge", json={"target_id": customer["id"]})
    assert itself.status_code == 422
    unknown = await client.post(
        f"/v1/customers/{customer['id']}/merge", json={"target_id": "01234567-89ab-7def-8123-456789abcdef"}
    )
    assert unknown.status_code == 404


async def test_erasure_leaves_no_personal_data_behind(client: httpx.AsyncClient) -> None:
    customer = await create_customer(
        client,
        name="周敏",
        email="zhou.min@example.com",
        card_number="CARD-9090",
        birthday="1985-07-01",
        address={"city": "北京市", "street": "王府井大街1号"},
    )
    cid = customer["id"]
    await client.post("/v1/purchases", json=order(cid, order_id="E-1"))
    await client.post(
        f"/v1/customers/{cid}/interactions",
        json={"kind": "survey", "score": 2, "note": "周敏说电话 13900001111 联系"},
        headers={"Idempotency-Key": "erase-note-1"},
    )
    export_before = (await client.get(f"/v1/customers/{cid}/export")).json()
    assert export_before["profile"]["name"] == "周敏" and len(export_before["purchases"]) == 1

    assert (await client.delete(f"/v1/customers/{cid}")).status_code == 204
    assert (await client.get(f"/v1/customers/{cid}")).status_code == 410
    assert (await client.get(f"/v1/customers/{cid}/export")).status_code == 410
    assert (await client.get("/v1/customers", params={"q": "周敏"})).json()["items"] == []
    assert (await client.get("/v1/customers", params={"q": "CARD-9090"})).json()["items"] == []
    feed = (await client.get("/v1/feeds/customers")).json()["items"]
    assert [e["type"] for e in feed if e["customer_id"] == cid] == ["created", "erased"]
    purchase_feed = (await client.get("/v1/feeds/purchases")).json()["items"]
    assert [p["order_id"] for p in purchase_feed] == ["E-1"]  # the aggregate stays
    everything = str(feed) + str(purchase_feed)
    for secret in ("周敏", "zhou.min", "CARD-9090", "1985-07-01", "王府井", "13900001111"):
        assert secret not in everything
    # A replay of the stored interaction response must not bring the note back.
    replay = await client.post(
        f"/v1/customers/{cid}/interactions",
        json={"kind": "survey", "score": 2, "note": "周敏说电话 13900001111 联系"},
        headers={"Idempotency-Key": "erase-note-1"},
    )
    assert replay.status_code == 410 and "周敏" not in replay.text
    assert (await client.delete(f"/v1/customers/{cid}")).status_code == 410


async def test_export_holds_everything_about_the_person(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client, email="wu.fang@example.com")
    cid = customer["id"]
    await client.post("/v1/purchases", json=order(cid, order_id="X-1"))
    await client.post(f"/v1/customers/{cid}/interactions", json={"kind": "call", "subject": "回访"})
    export = await client.get(f"/v1/customers/{cid}/export")
    assert export.status_code == 200
    body = export.json()
    assert body["profile"]["email"] == "wu.fang@example.com"
    assert [p["order_id"] for p in body["purchases"]] == ["X-1"]
    assert body["purchases"][0]["items"][0]["sku"] == "6901234567890"
    assert [i["subject"] for i in body["interactions"]] == ["回访"]
    assert [e["type"] for e in body["events"]] == ["created"]
    assert (await client.get(f"/v1/customers/{cid}/export", headers=auth("reader"))).status_code == 403


async def test_customer_feed_pages_with_a_cursor(client: httpx.AsyncClient) -> None:
    created = [await create_customer(client) for _ in range(5)]
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"after": cursor} if cursor else {})}
        page = (await client.get("/v1/feeds/customers", params=params, headers=auth("feeds"))).json()
        seen += [e["sequence"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert len(seen) == 5 and seen == sorted(seen)
    again = (await client.get("/v1/feeds/customers", params={"after": cursor})).json()
    assert again["items"] == [] and again["next_cursor"] == cursor and len(created) == 5


async def test_patch_with_null_clears_or_is_refused_and_the_profile_stays_readable(client: httpx.AsyncClient) -> None:
    created = await create_customer(client)
    url = f"/v1/customers/{created['id']}"
    filled = await client.patch(url, json={"tags": ["VIP"], "attributes": {"store": "南京西路"}, "email": "a@b.cn"})
    assert filled.status_code == 200
    # null clears what a profile may lack
    nullable = ("phone", "email", "gender", "birthday", "address", "card_number", "owner_id", "credit_rating")
    cleared = await client.patch(url, json=dict.fromkeys(nullable))
    assert cleared.status_code == 200, cleared.text
    body = cleared.json()
    assert all(body[field] is None for field in nullable)
    assert body["tags"] == ["VIP"] and body["attributes"] == {"store": "南京西路"}
    # what a profile always has refuses null (a list or a map is cleared with [] or {}): 422, nothing changes
    for field in ("type", "name", "tags", "attributes", "tier", "tier_locked", "restricted", "consents"):
        refused = await client.patch(url, json={field: None, "owner_id": "staff-77"})
        assert refused.status_code == 422, (field, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
        assert field in refused.text
    # true or false is a flag, a day is written out: pydantic alone takes 1 for true and 0 for 1970-01-01
    for field, value in (("restricted", 1), ("tier_locked", "yes"), ("birthday", 0)):
        refused = await client.patch(url, json={field: value, "owner_id": "staff-77"})
        assert refused.status_code == 422 and field in refused.text, (field, refused.text)
    emptied = await client.patch(url, json={"tags": [], "attributes": {}})
    assert emptied.status_code == 200 and emptied.json()["tags"] == [] and emptied.json()["attributes"] == {}
    after = await client.get(url)
    assert after.status_code == 200 and after.json()["owner_id"] is None
    assert after.json()["version"] == body["version"] + 1


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
async def test_a_number_that_is_not_finite_is_refused_on_every_backend(
    client: httpx.AsyncClient, number: bytes
) -> None:
    """Python's JSON parser takes NaN and Infinity (not JSON) and reads 1e400 as infinity: SQLite stored null for
    them, PostgreSQL refused them. Both answer 422 now, and nothing is stored."""
    created = await create_customer(client, attributes={"visits": 3})
    json = {"content-type": "application/json"}
    patched = await client.patch(
        f"/v1/customers/{created['id']}", content=b'{"attributes": {"visits": ' + number + b"}}", headers=json
    )
    added = await client.post(
        "/v1/customers", content=b'{"name": "x", "attributes": {"n": ' + number + b"}}", headers=json
    )
    for refused in (patched, added):
        assert refused.status_code == 422, refused.text
        assert "finite number" in refused.text and refused.json()["errors"][0]["field"].startswith("body.attributes")
    after = (await client.get(f"/v1/customers/{created['id']}")).json()
    assert after["attributes"] == {"visits": 3} and after["version"] == created["version"]
    assert (await client.get("/v1/customers", params={"q": "x"})).json()["items"] == []
