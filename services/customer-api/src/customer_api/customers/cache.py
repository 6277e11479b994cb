"""The profile cache: `GET /v1/customers/{id}` answered from memory, kept coherent by PostgreSQL.

A read that goes to the database stores the two renderings of the profile (with and without PII) as
the route produced them, headers and body. The next read of that id with a key allowed to read
customers is answered by `ProfileReads` before FastAPI, with the same bytes; anything else (another
path, a query string, no key or the wrong scope, an id not cached) goes through the application.

Coherence comes from the database, not from the code that writes: a trigger on `customers`
notifies `customer_changed` with the id of every updated or deleted row (`*` for big statements),
whoever wrote it — this replica, another one, a CLI import, the value refresh. Each replica
listens on its own connection and forgets what changed. The cache serves only while that
connection is up; when it drops, everything cached is forgotten until the listener is back.
Writes through this replica forget their profile when their response starts (after the commit),
so a client reads its own writes here; on other replicas a change shows once its notification
arrives (milliseconds). A read that raced a change is not stored: stores carry the epoch they
started in, and every forget starts a new one. SQLite has no notifications, so it has no cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

import asyncpg
import structlog
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy.engine import make_url
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_kit.auth import KeyRing
from crm_kit.background import running
from crm_kit.db import Database

log = structlog.get_logger(__name__)

CHANNEL = "customer_changed"
LISTENER = "customer-api profile cache"  # the listening connection's application_name in pg_stat_activity
PREFIX = "/v1/customers/"
ID_LENGTH = 36  # canonical text form, as `str(uuid)` writes it
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Rendering = tuple[list[tuple[bytes, bytes]], bytes]  # raw headers and body, as the route sent them
Renderer = Callable[[bool], Rendering]  # show_pii → rendering


class ProfileCache:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.live = False  # True only while the change listener is connected
        self.epoch = 0
        self.hits = 0
        self._entries: dict[str, tuple[Rendering, Rendering]] = {}  # id → (masked, with PII)

    def collect(self) -> Iterator[Metric]:
        """Prometheus collector: hits, entries and whether the cache is live."""
        yield CounterMetricFamily("profile_cache_hits", "Profile reads answered from the cache", value=self.hits)
        yield GaugeMetricFamily("profile_cache_entries", "Profiles held in the cache", value=len(self._entries))
        yield GaugeMetricFamily("profile_cache_live", "1 while changes are followed", value=self.live)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, customer_id: str) -> bool:
        return customer_id in self._entries

    def entry(self, customer_id: str) -> tuple[Rendering, Rendering] | None:
        """The profile's renderings (masked, with PII) if cached."""
        return self._entries.get(customer_id)

    def store(self, customer_id: uuid.UUID, epoch: int, render: Renderer) -> None:
        """Keep both renderings of a profile read in `epoch`, unless something changed since it began."""
        if not self.live or epoch != self.epoch or self.capacity <= 0:
            return
        entries = self._entries
        entries[str(customer_id)] = (render(False), render(True))
        if len(entries) > self.capacity:
            del entries[next(iter(entries))]  # the oldest stored

    def forget(self, customer_id: str) -> None:
        self.epoch += 1
        self._entries.pop(customer_id, None)

    def forget_all(self) -> None:
        self.epoch += 1
        self._entries.clear()

    def set_live(self, live: bool) -> None:
        self.live = live
        self.forget_all()

    def on_notice(self, payload: str) -> None:
        if payload == "*":
            self.forget_all()
        else:
            self.forget(payload)


class ProfileReads:
    """ASGI layer inside the request middleware (ids, logs, metrics, limits apply) and before FastAPI."""

    def __init__(self, app: ASGIApp, *, cache: ProfileCache, scope: str, pii_scope: str) -> None:
        self.app = app
        self.cache = cache
        self.scope = scope
        self.pii_scope = pii_scope
        self._route: BaseRoute | None = None
        self._readers: dict[bytes, bool] = {}  # Authorization header → may see PII

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if scope["method"] not in SAFE_METHODS:
            await self.app(scope, receive, self._forgetting(path, send))
            return
        if scope["method"] == "GET" and not scope["query_string"] and len(path) == len(PREFIX) + ID_LENGTH:
            rendering = self._cached(scope, path)
            if rendering is not None:
                headers, body = rendering
                self.cache.hits += 1
                scope["route"] = self._route or self._find_route(scope)
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    def _cached(self, scope: Scope, path: str) -> Rendering | None:
        if not self.cache.live or not path.startswith(PREFIX):
            return None
        entry = self.cache.entry(path[len(PREFIX) :])
        if entry is None:
            return None
        for name, value in scope["headers"]:
            if name == b"authorization":
                show_pii = self._readers.get(value)
                if show_pii is None and (show_pii := self._reader(scope, value)) is None:
                    return None  # the application answers 401 / 403
                return entry[show_pii]
        return None

    def _reader(self, scope: Scope, authorization: bytes) -> bool | None:
        """Whether this `Authorization` value may read profiles with PII, without it, or (None) not at all."""
        # As HTTPBearer reads it: the scheme, one space, the key.
        scheme, _, credentials = authorization.decode("latin-1").partition(" ")
        keyring: KeyRing = scope["app"].state.keyring
        principal = keyring.authenticate(credentials) if scheme.lower() == "bearer" else None
        if principal is None or not principal.has(self.scope):
            return None
        # Remembered for valid keys only (a few spellings of the scheme each), so this stays small.
        self._readers[authorization] = show_pii = principal.has(self.pii_scope)
        return show_pii

    def _find_route(self, scope: Scope) -> BaseRoute:
        for route in iter_route_contexts(scope["app"].routes):
            if route.path_format == PREFIX + "{customer_id}" and "GET" in (route.methods or ()):
                self._route = route.original_route
                return route.original_route
        raise LookupError("the profile read route is not registered")

    def _forgetting(self, path: str, send: Send) -> Send:
        """A write's `send` that forgets what it may have changed when its response starts (after the commit)."""
        if not path.startswith(PREFIX):
            return send
        head, _, rest = path[len(PREFIX) :].partition("/")
        # One profile, by its id as the cache keys it (the route also takes it upper case, without hyphens or in
        # braces); a merge or a reassignment touches several.
        try:
            single = str(uuid.UUID(head)) if rest != "merge" else None
        except ValueError:
            single = None

        async def send_forgetting(message: Message) -> None:
            if message["type"] == "http.response.start":
                if single is not None:
                    self.cache.forget(single)
                else:
                    self.cache.forget_all()
            await send(message)

        return send_forgetting


async def follow_changes(cache: ProfileCache, database_url: str, *, check_seconds: float = 2.0) -> None:
    """Keep `cache` live while a connection listens on `customer_changed`; reconnect when it drops."""
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    delay = 0.2
    while True:
        try:
            await _listen(cache, dsn, check_seconds)
            delay = 0.2
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            # The database is away: reads go to it (and fail there, or succeed) until the listener is back.
            log.warning("profile_cache_listener_down", error=type(error).__name__)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)


async def _listen(cache: ProfileCache, dsn: str, check_seconds: float) -> None:
    """One listening connection: the cache is live from its LISTEN until it drops (then this returns)."""
    connection = await asyncpg.connect(dsn, timeout=check_seconds, server_settings={"application_name": LISTENER})
    dropped = asyncio.Event()
    try:
        connection.add_termination_listener(lambda _c: dropped.set())
        await connection.add_listener(CHANNEL, lambda _c, _pid, _channel, payload: cache.on_notice(payload))
        cache.set_live(True)
        log.info("profile_cache_live")
        while not dropped.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(dropped.wait(), check_seconds)
            if not dropped.is_set():
                # A connection cut without a goodbye shows only when it is used.
                await connection.fetchval("SELECT 1", timeout=check_seconds)
    finally:
        cache.set_live(False)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(connection.close(), 1.0)


@asynccontextmanager
async def listening(app: FastAPI) -> AsyncIterator[None]:
    """Follow profile changes for the app's lifetime (PostgreSQL only; elsewhere the cache stays off)."""
    cache: ProfileCache = app.state.profile_cache
    database: Database = app.state.database
    if database.dialect != "postgresql" or cache.capacity == 0:
        yield
        return
    async with running({"profile-cache-listener": follow_changes(cache, database.url)}):
        yield
