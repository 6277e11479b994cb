"""Cursor pagination: `?limit=&cursor=` in, `{"items": [...], "next_cursor": ...}` out.

A cursor is an opaque, signed token holding the keyset position; a cursor that was not issued by
this service (or was altered) is a 400, never a silent restart from the first page.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Query, Request
from pydantic import BaseModel

from crm_kit.errors import BadRequest

T = TypeVar("T")
R = TypeVar("R")

MAX_LIMIT = 500


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class CursorCodec:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def encode(self, position: Any) -> str:
        payload = base64.urlsafe_b64encode(orjson.dumps(position)).rstrip(b"=")
        mac = hmac.new(self._key, payload, hashlib.sha256).digest()[:12]
        return (payload + b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")).decode()

    def decode(self, cursor: str) -> Any:
        try:
            payload, mac = cursor.encode("ascii").split(b".", 1)
            expected = hmac.new(self._key, payload, hashlib.sha256).digest()[:12]
            if not hmac.compare_digest(base64.urlsafe_b64decode(mac + b"=" * (-len(mac) % 4)), expected):
                raise ValueError("bad signature")
            return orjson.loads(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)))
        except (ValueError, UnicodeEncodeError) as exc:
            raise BadRequest("the cursor is not valid; start again without a cursor", field="cursor") from exc


class PageParams:
    """The `limit` and `cursor` query parameters, with the cursor decoded."""

    def __init__(
        self,
        request: Request,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")] = 50,
        cursor: Annotated[str | None, Query(max_length=512, description="`next_cursor` of the previous page")] = None,
    ) -> None:
        self.limit = limit
        self._codec: CursorCodec = request.app.state.cursor_codec
        self.position: Any = self._codec.decode(cursor) if cursor else None

    def keyset(self, *parsers: Callable[[Any], Any]) -> tuple[Any, ...] | None:
        """The cursor's position as a tuple, each part checked by its parser; None on the first page."""
        if self.position is None:
            return None
        try:
            if not isinstance(self.position, list) or len(self.position) != len(parsers):
                raise ValueError("wrong shape")
            return tuple(parse(part) for parse, part in zip(parsers, self.position, strict=True))
        except (TypeError, ValueError, AttributeError) as exc:
            raise BadRequest("the cursor does not belong to this list", field="cursor") from exc

    def next_cursor(self, *position: Any) -> str:
        return self._codec.encode([str(p) if not isinstance(p, int) else p for p in position])

    def page(self, rows: Sequence[R], render: Callable[[R], T], position: Callable[[R], tuple[Any, ...]]) -> Page[T]:
        """`rows` holds up to `limit + 1` entries; the extra one says another page follows, whose cursor is
        the keyset `position` of the last row shown."""
        shown = rows[: self.limit]
        next_cursor = self.next_cursor(*position(shown[-1])) if len(rows) > self.limit else None
        return Page(items=[render(row) for row in shown], next_cursor=next_cursor)


class FeedPage(BaseModel, Generic[T]):
    """A page of an ordered change feed. `next_cursor` is never null: keep polling with it."""

    items: list[T]
    next_cursor: str
    has_more: bool


class FeedParams:
    """`after` (a feed cursor; absent = from the beginning) and `limit`, with the position decoded.

    A cursor names its feed (the path it was read from), so a follower configured with another feed's cursor is
    told instead of skipping events. A bare position, as cursors were issued before, is still taken: followers keep
    theirs across an upgrade."""

    def __init__(
        self,
        request: Request,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT * 2, description="Page size")] = 200,
        after: Annotated[str | None, Query(max_length=512, description="`next_cursor` of the previous page")] = None,
    ) -> None:
        self.limit = limit
        self._codec: CursorCodec = request.app.state.cursor_codec
        self._feed = request.url.path
        position = self._codec.decode(after) if after else 0
        if isinstance(position, list) and len(position) == 2:
            feed, position = position
            if feed != self._feed:
                raise BadRequest(f"the cursor belongs to the feed {feed}, not this one", field="after")
        if not isinstance(position, int) or isinstance(position, bool) or position < 0:
            raise BadRequest("the cursor is not a feed position", field="after")
        self.position: int = position

    def page(self, rows: list[T], position_of: Callable[[T], int]) -> FeedPage[T]:
        """`rows` holds up to `limit + 1` entries read after the position; the extra one says more wait."""
        items = rows[: self.limit]
        end = position_of(items[-1]) if items else self.position
        return FeedPage(items=items, next_cursor=self._codec.encode([self._feed, end]), has_more=len(rows) > self.limit)
