"""The API contract every endpoint keeps: problem+json errors, auth, cursors, idempotency, request ids, health."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from conftest import auth
from helpers import create_customer, next_phone

from customer_api.config import Settings
from customer_api.main import create_app

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status and body["type"].startswith("https://") and body["title"]
    assert "Traceback" not in response.text
    return body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": 123}, "body.name"),
        ({"name": "王", "tags": "母婴"}, "body.tags"),
        ({"name": "王", "birthday": "1990-02-30"}, "body.birthday"),
        ({"name": "王", "birthday": 0}, "body.birthday"),  # not 1970-01-01
        ({"name": "王", "birthday": "1899-12-31"}, "body.birthday"),
        ({"name": "王", "birthday": "2999-01-01"}, "body.birthday"),
        ({"name": "王", "type": "alien"}, "body.type"),
        ({"name": "王", "favourite_colour": "red"}, "body.favourite_colour"),
        ({"name": "王" * 201}, "body.name"),
        ({"name": "王", "tags": ["t"] * 51}, "body.tags"),
        ({"name": "王", "tags": ["x" * 33]}, "body.tags.0"),
        ({"name": "王", "attributes": {"k": "v" * 1001}}, "body.attributes"),
        ({"name": "王", "card_number": "卡号"}, "body.card_number"),
        ({"name": "王", "address": {"city": "上海", "planet": "地球"}}, "body.address.planet"),
        ({}, "body.name"),
    ],
)
async def test_bad_bodies_list_the_fields(client: httpx.AsyncClient, body: dict, field: str) -> None:
    problem = assert_problem(await client.post("/v1/customers", json=body), 422)
    assert field in [e["field"] for e in problem["errors"]]


async def test_text_holding_nul_is_refused_on_every_backend(client: httpx.AsyncClient) -> None:
    """PostgreSQL cannot store U+0000, so it is refused up front (SQLite would keep it): the same 422 on both,
    never the database's failure after the request was taken."""
    for part, response in (
        ("body", await client.post("/v1/customers", json={"name": "王\u0000芳"})),
        ("body", await client.post("/v1/customers", json={"name": "王芳", "tags": ["母婴", "x\u0000"]})),
        ("query", await client.get("/v1/customers", params={"q": "王\u0000"})),
        ("path", await client.get("/v1/purchases/order%00-1")),
    ):
        problem = assert_problem(response, 422)
        assert problem["errors"] == [{"field": part, "message": "text may not contain the NUL character (U+0000)",
                                      "type": "nul_character"}]  # fmt: skip
    assert (await client.get("/v1/customers", params={"q": "王"})).json()["items"] == []  # nothing was stored
    literal = await client.post("/v1/customers", json={"name": "a\\u0000 is six characters"})
    assert literal.status_code == 201 and literal.json()["name"] == "a\\u0000 is six characters"


async def test_invalid_phone_and_email_are_named(client: httpx.AsyncClient) -> None:
    for body, field in (
        ({"name": "王", "phone": "12345"}, "phone"),
        ({"name": "王", "phone": "电话号码"}, "phone"),
        ({"name": "王", "email": "not-an-email"}, "email"),
        ({"name": "王", "email": "a@b"}, "email"),
    ):
        problem = assert_problem(await client.post("/v1/customers", json=body), 422)
        # Refused by phonenumbers or email-validator, not the schema: still in `errors`, as a schema failure is.
        assert problem["field"] == field and [e["field"] for e in problem["errors"]] == [field]
        assert problem["errors"][0]["message"] == problem["detail"]


async def test_malformed_json_and_invalid_utf8_are_client_errors(client: httpx.AsyncClient) -> None:
    headers = {"content-type": "application/json"}
    for raw in (b'{"name": "\xe7\x8e"}', b"\xff\xfe{", b'{"name": ', b"[1, 2]", b""):
        response = await client.post("/v1/customers", content=raw, headers=headers)
        assert_problem(response, 422)  # bytes that are not UTF-8 too, not FastAPI's bare 400


async def test_bad_query_and_path_parameters(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/customers/not-a-uuid"), 422)
    assert_problem(await client.get("/v1/customers", params={"limit": 0}), 422)
    assert_problem(await client.get("/v1/customers", params={"limit": 100000}), 422)
    assert_problem(await client.get("/v1/customers", params={"q": "x" * 101}), 422)
    assert_problem(await client.get("/v1/customers", params={"consent": "spam"}), 422)
    # A tier that does not exist is named, as a type or a consent purpose is, not answered with an empty list.
    for path in ("/v1/customers", "/v1/analytics/churn-risk"):
        problem = assert_problem(await client.get(path, params={"tier": "Gold"}), 422)
        assert problem["errors"][0]["field"] == "query.tier", path
    missing = assert_problem(await client.get("/v1/customers/01234567-89ab-7def-8123-456789abcdef"), 404)
    assert missing["instance"] == "/v1/customers/01234567-89ab-7def-8123-456789abcdef"
    assert_problem(await client.get("/v1/nothing-here"), 404)
    # 405 names every method served at the path, not only those of the first route that matched it.
    not_allowed = await client.put("/v1/customers")
    assert_problem(not_allowed, 405)
    assert not_allowed.headers["allow"] == "GET, HEAD, POST"
    profile = await client.request("OPTIONS", "/v1/customers/01234567-89ab-7def-8123-456789abcdef")
    assert_problem(profile, 405)
    assert profile.headers["allow"] == "DELETE, GET, HEAD, PATCH"


async def test_bad_cursors_are_400_not_a_restart(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        await create_customer(client)
    page = (await client.get("/v1/customers", params={"limit": 1})).json()
    cursor = page["next_cursor"]
    tampered = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    feed_cursor = (await client.get("/v1/feeds/customers", params={"limit": 1})).json()["next_cursor"]
    for bad in ("garbage", tampered, "a.b.c", "", "\u738b", feed_cursor):
        response = await client.get("/v1/customers", params={"cursor": bad})
        if bad == "":
            assert response.status_code == 200
            continue
        assert assert_problem(response, 400)["field"] == "cursor", bad
    for bad in ("garbage", cursor):
        assert assert_problem(await client.get("/v1/feeds/purchases", params={"after": bad}), 400)


async def test_authentication_and_scopes(client: httpx.AsyncClient) -> None:
    anonymous = httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url))
    async with anonymous:
        missing = assert_problem(await anonymous.get("/v1/customers"), 401)
        assert "API key" in missing["detail"]
        assert (await anonymous.get("/v1/customers")).headers["www-authenticate"] == "Bearer"
        wrong = await anonymous.get("/v1/customers", headers={"Authorization": "Bearer nope"})
        assert_problem(wrong, 401)
        basic = await anonymous.get("/v1/customers", headers={"Authorization": "Basic dXNlcjpwdw=="})
        assert_problem(basic, 401)
        assert (await anonymous.get("/healthz")).status_code == 200
    forbidden = assert_problem(await client.post("/v1/customers", json={"name": "王"}, headers=auth("reader")), 403)
    assert forbidden["required_scope"] == "customers:write"
    assert_problem(
        await client.delete(f"/v1/customers/{(await create_customer(client))['id']}", headers=auth("pii-reader")), 403
    )
    assert_problem(await client.get("/v1/customers", headers=auth("pos")), 403)
    assert (await client.get("/v1/customers", headers=auth("reader"))).status_code == 200


async def test_idempotency_key_on_create(client: httpx.AsyncClient) -> None:
    body = {"name": "孙丽", "phone": next_phone()}
    key = {"Idempotency-Key": "mobile-7f3a"}
    first = await client.post("/v1/customers", json=body, headers=key)
    retry = await client.post("/v1/customers", json=body, headers=key)
    assert first.status_code == retry.status_code == 201
    assert retry.json()["id"] == first.json()["id"]
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.headers["location"] == first.headers["location"] and retry.headers["etag"] == '"1"'
    other = assert_problem(await client.post("/v1/customers", json={**body, "name": "别人"}, headers=key), 422)
    assert other["field"] == "Idempotency-Key"
    # Another client may use the same key for its own request.
    own = await client.post(
        "/v1/customers", json={"name": "另一个", "phone": next_phone()}, headers={**key, **auth("pii-reader")}
    )
    assert own.status_code == 403
    found = (await client.get("/v1/customers", params={"q": "孙丽"})).json()["items"]
    assert len(found) == 1


async def test_concurrent_retries_with_one_key_create_one_customer(client: httpx.AsyncClient) -> None:
    body = {"name": "钱多多", "phone": next_phone()}
    responses = await asyncio.gather(
        *(client.post("/v1/customers", json=body, headers={"Idempotency-Key": "race-1"}) for _ in range(8))
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1


async def test_request_id_is_accepted_generated_and_returned(client: httpx.AsyncClient) -> None:
    given = await client.get("/healthz", headers={"X-Request-ID": "pos-42.abc"})
    assert given.headers["x-request-id"] == "pos-42.abc"
    generated = await client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])
    hostile = await client.get("/healthz", headers={"X-Request-ID": "x" * 300})
    assert hostile.headers["x-request-id"] != "x" * 300
    failing = await client.get("/v1/customers/not-a-uuid", headers={"X-Request-ID": "trace-9"})
    assert failing.headers["x-request-id"] == "trace-9"


async def test_health_readiness_and_metrics(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    await client.get("/v1/customers")
    await client.get("/openapi.json")
    await client.get("/no/such/path/4711")
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert 'http_requests_total{method="GET",route="/v1/customers",service="customer-api",status="200"}' in metrics.text
    assert 'route="/openapi.json",service="customer-api",status="200"}' in metrics.text  # its own, fixed path
    # No label per path sent (the digits alone may turn up in a float: a duration, a timestamp).
    assert "/no/such/path/4711" not in metrics.text
    assert 'route="unmatched",service="customer-api",status="404"}' in metrics.text
    assert "http_request_duration_seconds_bucket" in metrics.text


@pytest.fixture
async def unmigrated_app(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        environment="test",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}",
        access_log=False,
        max_body_bytes=2048,
    )
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://customer-api") as http,
    ):
        yield http


async def test_not_ready_until_migrated_and_small_body_limit(unmigrated_app: httpx.AsyncClient) -> None:
    ready = await unmigrated_app.get("/readyz")
    assert ready.status_code == 503 and ready.json()["status"] == "migrating" and ready.json()["at"] == []
    too_big = await unmigrated_app.post(
        "/v1/customers",
        content=b'{"name": "' + b"a" * 4000 + b'"}',
        headers={"Authorization": "Bearer dev-admin-key", "content-type": "application/json"},
    )
    assert assert_problem(too_big, 413)["instance"] == "/v1/customers"  # as every problem names its request

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: the limit is counted as the body arrives
        for part in (b'{"name": "', b"a" * 4000, b'"}'):
            yield part

    too_big_chunked = await unmigrated_app.post(
        "/v1/customers",
        content=chunked(),
        headers={"Authorization": "Bearer dev-admin-key", "content-type": "application/json"},
    )
    assert "content-length" not in too_big_chunked.request.headers
    assert_problem(too_big_chunked, 413)


async def test_openapi_documents_problems_scopes_and_examples(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    create = spec["paths"]["/v1/customers"]["post"]
    assert "application/problem+json" in create["responses"]["409"]["content"]
    assert create["requestBody"]["content"]["application/json"]["schema"]
    assert "王芳" in str(spec["components"]["schemas"]["CustomerCreate"])
    assert spec["components"]["securitySchemes"]
