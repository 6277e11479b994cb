"""Signed cursors, ETag parsing and feed lock keys."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI

from crm_kit.concurrency import IfMatch, _if_match, check_version, etag
from crm_kit.db import lock_key
from crm_kit.errors import BadRequest, PreconditionFailed
from crm_kit.pagination import CursorCodec


def test_cursor_round_trip_and_tamper_detection() -> None:
    codec = CursorCodec(b"k1")
    token = codec.encode(["2026-11-23T10:00:00+00:00", 42])
    assert codec.decode(token) == ["2026-11-23T10:00:00+00:00", 42]
    payload, mac = token.split(".")
    forged = CursorCodec(b"k1").encode(["2026-11-23T10:00:00+00:00", 43]).split(".")[0] + "." + mac
    for bad in (forged, payload, token + "x", "王", "", "....", CursorCodec(b"other-key").encode(1)):
        with pytest.raises(BadRequest):
            codec.decode(bad)


def test_etags_and_if_match() -> None:
    assert etag(3) == '"3"'
    assert _if_match('"3"') == 3 and _if_match('W/"3"') == 3
    assert _if_match(None) is None and _if_match("*") is None and _if_match(" * ") is None
    for bad in ("3", '"abc"', '"-1"', '"3", "4"', "null", "**", '"١"'):  # int() would read the last as 1
        with pytest.raises(PreconditionFailed):
            _if_match(bad)
    check_version(3, None)
    check_version(3, 3)
    with pytest.raises(PreconditionFailed) as stale:
        check_version(4, 3)
    assert stale.value.extra == {"current_version": 4}


def test_the_schema_says_what_if_match_may_hold() -> None:
    app = FastAPI()

    @app.patch("/things/{thing_id}")
    async def update(thing_id: int, expected: IfMatch) -> None: ...

    (header,) = [p for p in app.openapi()["paths"]["/things/{thing_id}"]["patch"]["parameters"] if p["in"] == "header"]
    pattern = header["schema"]["pattern"]
    for value in ('"3"', 'W/"12"', "*", ' "3" ', "3", '"abc"', "null", '"3", "4"'):
        try:
            _if_match(value)
            taken = True
        except PreconditionFailed:
            taken = False
        assert taken == bool(re.search(pattern, value)), value


def test_feed_lock_keys_are_stable_signed_64_bit_and_distinct() -> None:
    a, b = lock_key("customer-api:purchase-feed"), lock_key("customer-api:customer-feed")
    assert a == lock_key("customer-api:purchase-feed") and a != b
    assert all(-(2**63) <= k < 2**63 for k in (a, b))
