"""Request limits on a real application built by `build_app`, driven over ASGI: the rate per key, and bodies
refused as they are read (too large, unreadable, or holding text PostgreSQL cannot store), a key's refusal before
an unreadable body's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter
from pydantic import BaseModel

from crm_kit.app import build_app
from crm_kit.auth import hash_api_key, require
from crm_kit.limits import RateLimitMiddleware
from crm_kit.settings import ApiKeyConfig, ServiceSettings

router = APIRouter()
JSON = {"content-type": "application/json"}


@router.get("/v1/ping")
async def ping() -> dict[str, str]:
    return {"pong": "ok"}


class Note(BaseModel):
    text: str


@router.get("/v1/echo/{text:path}")
async def echo_path(text: str, q: str = "") -> dict[str, str]:
    return {"text": text, "q": q}


@router.post("/v1/notes")
async def echo(note: Note) -> Note:
    return note


@router.post("/v1/guarded-notes", dependencies=[require("notes:write")])
async def guarded_echo(note: Note) -> Note:
    return note


def _client(tmp_path: Path, **limits: object) -> httpx.AsyncClient:
    """An app with one route and an empty migrations folder (the app reads its migration heads at build)."""
    (tmp_path / "migrations" / "versions").mkdir(parents=True)
    (tmp_path / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s/migrations\n")
    settings = ServiceSettings(environment="test", data_dir=tmp_path, access_log=False, **limits)
    app = build_app(
        settings, title="t", version="0", description="", routers=[router], alembic_ini=tmp_path / "alembic.ini"
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


KEYS = [
    ApiKeyConfig(name="one", sha256=hash_api_key("key-one"), scopes=["notes:read"]),
    ApiKeyConfig(name="two", sha256=hash_api_key("key-two"), scopes=["notes:read"]),
]


async def test_a_key_over_its_rate_gets_429_with_retry_after_and_others_are_unaffected(tmp_path: Path) -> None:
    async with _client(tmp_path, rate_limit_per_minute=60, rate_limit_burst=3, api_keys=KEYS) as client:
        first = {"Authorization": "Bearer key-one"}
        statuses = [(await client.get("/v1/ping", headers=first)).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        refused = await client.get("/v1/ping", headers=first)
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["status"] == 429 and refused.headers["x-request-id"]
        assert (await client.get("/v1/ping", headers={"Authorization": "Bearer key-two"})).status_code == 200
        assert [(await client.get("/healthz")).status_code for _ in range(10)] == [200] * 10


async def test_a_key_is_one_bucket_however_its_scheme_is_written(tmp_path: Path) -> None:
    async with _client(tmp_path, rate_limit_per_minute=60, rate_limit_burst=2, api_keys=KEYS) as client:
        statuses = [
            (await client.get("/v1/ping", headers={"Authorization": f"{scheme} key-one"})).status_code
            for scheme in ("Bearer", "bearer", "BEARER", "bEaReR")
        ]
        assert statuses == [200, 200, 429, 429]


async def test_made_up_keys_share_the_bucket_of_callers_without_a_key(tmp_path: Path) -> None:
    """A token that is no key is a call without one, counted against the caller's address: a new made-up token per
    request does not get a fresh bucket each time. The valid keys keep their own buckets."""
    async with _client(tmp_path, rate_limit_per_minute=60, rate_limit_burst=3, api_keys=KEYS) as client:
        made_up = [
            (await client.get("/v1/ping", headers={"Authorization": f"Bearer made-up-{n}"})).status_code
            for n in range(3)
        ]
        assert made_up == [200, 200, 200]
        assert (await client.get("/v1/ping", headers={"Authorization": "Bearer made-up-3"})).status_code == 429
        assert (await client.get("/v1/ping", headers={"Authorization": "Basic bWFkZTp1cA=="})).status_code == 429
        assert (await client.get("/v1/ping")).status_code == 429
        assert (await client.get("/v1/ping", headers={"Authorization": "Bearer key-one"})).status_code == 200


async def test_no_limit_unless_configured(tmp_path: Path) -> None:
    async with _client(tmp_path) as client:
        assert {(await client.get("/v1/ping")).status_code for _ in range(200)} == {200}


@pytest.mark.parametrize(("elapsed", "admitted"), [(0.5, False), (1.0, True), (120.0, True)])
def test_tokens_refill_at_the_configured_rate(elapsed: float, admitted: bool) -> None:
    limiter = RateLimitMiddleware(lambda *_: None, per_minute=60, burst=2)  # type: ignore[arg-type]
    assert limiter._admit(b"k", 0.0) == 0 and limiter._admit(b"k", 0.0) == 0
    assert limiter._admit(b"k", 0.0) == pytest.approx(1.0)  # one token a second
    assert (limiter._admit(b"k", elapsed) == 0) is admitted
    assert limiter.buckets[b"k"].tokens <= 2


async def _sent_in_pieces(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


@pytest.mark.parametrize(
    "pieces",
    [
        (b'{"text": "a\\u0000b"}',),
        (b'{"text": "a\\u00', b'00b"}'),  # the escape split between two chunks
        (b'{"text": "a\\', b"u0000", b'b"}'),
        (b'{"text": "a\\\\\\u0000b"}',),  # an escaped backslash, then U+0000
    ],
)
async def test_a_body_holding_nul_is_a_422_however_it_arrives(tmp_path: Path, pieces: tuple[bytes, ...]) -> None:
    async with _client(tmp_path) as client:
        refused = await client.post("/v1/notes", content=_sent_in_pieces(*pieces), headers=JSON)
        assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["errors"][0]["field"] == "body"


async def test_a_backslash_before_u0000_is_text_not_nul(tmp_path: Path) -> None:
    async with _client(tmp_path) as client:
        for pieces in ((b'{"text": "a\\\\u0000"}',), (b'{"text": "a\\\\', b'u0000"}')):
            taken = await client.post("/v1/notes", content=_sent_in_pieces(*pieces), headers=JSON)
            assert taken.status_code == 200
        assert taken.json() == {"text": "a\\u0000"}


@pytest.mark.parametrize(
    ("url", "part"),
    [
        ("/v1/echo/a?q=%FF", "query"),  # a lone byte
        ("/v1/echo/a?q=%E7%8E", "query"),  # 王 cut short
        ("/v1/echo/a?q=%C0%80", "query"),  # an overlong form
        ("/v1/echo/%ED%A0%80", "path"),  # a surrogate
        ("/v1/echo/%E7%8E?q=%E7%8E", "path"),
    ],
)
async def test_escapes_that_are_not_utf8_are_a_422(tmp_path: Path, url: str, part: str) -> None:
    async with _client(tmp_path) as client:
        refused = await client.get(url)
        assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["errors"] == [
            {"field": part, "message": "percent-escapes must decode to UTF-8 text", "type": "invalid_utf8"}
        ]


async def test_utf8_escapes_and_a_literal_replacement_character_are_taken(tmp_path: Path) -> None:
    async with _client(tmp_path) as client:
        taken = await client.get("/v1/echo/%E7%8E%8B%20%EF%BF%BD?q=%E7%8E%8B+%25FF%20%EF%BF%BD")
        assert taken.status_code == 200 and taken.json() == {"text": "王 \ufffd", "q": "王 %FF \ufffd"}


async def test_a_body_over_the_limit_without_content_length_is_a_413(tmp_path: Path) -> None:
    async with _client(tmp_path, max_body_bytes=1024) as client:
        refused = await client.post(
            "/v1/notes", content=_sent_in_pieces(b'{"text": "', b"a" * 2000, b'"}'), headers=JSON
        )
        assert "content-length" not in refused.request.headers
        assert refused.status_code == 413 and refused.json()["status"] == 413


@pytest.mark.parametrize(
    "body", [b'{"text": "\xff\xfe"}', b'{"text": "\xc0\x80"}', b'{"text": "caf\xe9"}', b'{"text": ']
)
async def test_a_body_that_is_not_utf8_json_is_the_same_422_as_malformed_json(tmp_path: Path, body: bytes) -> None:
    """FastAPI answered bytes that are not UTF-8 with a bare 400 ("There was an error parsing the body")."""
    async with _client(tmp_path) as client:
        refused = await client.post("/v1/notes", content=body, headers=JSON)
        assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
        error = refused.json()["errors"][0]
        assert error["field"].startswith("body") and error["message"] == "request body is not valid JSON (UTF-8)"


@pytest.mark.parametrize(
    ("body", "kind", "message"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "json_too_deep", "request body is nested too deeply to read"),
        (b'{"text": 1' + b"0" * 5_000 + b"}", "json_number_too_long", "request body holds a number too long to read"),
    ],
)
async def test_a_body_beyond_what_the_parser_reads_is_a_422(
    tmp_path: Path, body: bytes, kind: str, message: str
) -> None:
    """Valid JSON that Python's parser will not read (RecursionError, or ValueError for an integer of more than
    4,300 digits): FastAPI answered both with a bare 400."""
    async with _client(tmp_path) as client:
        refused = await client.post("/v1/notes", content=body, headers=JSON)
        assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["errors"] == [{"field": "body", "message": message, "type": kind}]


@pytest.mark.parametrize("body", [b'{"text": ', b'{"text": "caf\xe9"}', b"[" * 100_000 + b"]" * 100_000])
async def test_an_unreadable_body_is_refused_after_the_key(tmp_path: Path, body: bytes) -> None:
    """FastAPI reads the body before the key check runs: without it, these were 422s whatever the key."""
    keys = [
        ApiKeyConfig(name="writer", sha256=hash_api_key("writer-key-0001"), scopes=["notes:write"]),
        ApiKeyConfig(name="reader", sha256=hash_api_key("reader-key-0001"), scopes=["notes:read"]),
    ]
    async with _client(tmp_path, api_keys=keys, dev_api_key=None) as client:

        async def sent(key: str | None) -> httpx.Response:
            return await client.post(
                "/v1/guarded-notes", content=body, headers={**JSON, **({"Authorization": key} if key else {})}
            )

        assert (await sent(None)).status_code == 401
        assert (await sent("Bearer no-such-key")).status_code == 401
        assert (await sent("Basic d3JpdGVyOmtleQ==")).status_code == 401
        forbidden = await sent("Bearer reader-key-0001")
        assert forbidden.status_code == 403 and forbidden.headers["content-type"] == "application/problem+json"
        assert (await sent("bearer writer-key-0001")).status_code == 422
        # A body read and found invalid was already refused after the key: the key check is a dependency.
        unread = await client.post("/v1/guarded-notes", json={"text": 1})
        assert unread.status_code == 401
