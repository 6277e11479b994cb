"""The one way a CRM service calls a peer service over HTTP.

This module owns everything about service-to-service calls: the pooled
``httpx.AsyncClient`` per peer, timeouts, the headers every call carries
(bearer key, propagated ``X-Request-ID``, ``Idempotency-Key``, ``User-Agent``),
which calls may be retried and when, backoff, and the per-peer circuit breaker.

Callers get back an ``httpx.Response`` for anything the peer *answered*
(2xx, 3xx, 4xx) and a ``PeerUnavailable`` for anything that means "treat the
peer as down": it could not be reached, it timed out, it kept failing with 5xx,
or its breaker is open.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version
from types import TracebackType
from typing import Self, TypedDict, Unpack

import httpx
import structlog

from crm_kit.context import request_id

__all__ = [
    "CircuitBreaker",
    "CircuitOpen",
    "CircuitState",
    "PeerClient",
    "PeerConfig",
    "PeerUnavailable",
    "RequestOptions",
]

log = structlog.get_logger(__name__)

try:
    _USER_AGENT = f"crm-kit/{version('crm-kit')}"
except PackageNotFoundError:  # running from a source checkout
    _USER_AGENT = "crm-kit"

# Repeating these has the same effect as sending them once (RFC 9110 §9.2.2).
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# Gateway-ish statuses that say "try again", as opposed to a 500, which says
# the peer processed the request and broke; repeating that rarely helps.
_RETRYABLE_STATUSES = frozenset({502, 503, 504})
# The request may have reached the peer, so only idempotent calls repeat these.
_RETRYABLE_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)
# The request never left this process, so even a plain POST may repeat these.
_NOT_SENT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)


def _route(path: str) -> str:
    # Query strings can carry customer data; the route alone is enough to debug.
    return path.split("?", 1)[0]


class RequestOptions(TypedDict, total=False):
    """The keyword arguments of ``PeerClient.request``, for its per-method shortcuts."""

    json: object
    params: Mapping[str, object] | None
    headers: Mapping[str, str] | None
    idempotency_key: str | None


class PeerUnavailable(Exception):
    """The peer must be treated as down for this call.

    Raised when the peer could not be reached, timed out, kept answering 5xx
    after the allowed retries, or its circuit breaker is open. ``status_code``
    is the last status the peer sent, if it sent one.
    """

    def __init__(self, peer: str, message: str, *, status_code: int | None = None) -> None:
        super().__init__(f"peer {peer!r} unavailable: {message}")
        self.peer = peer
        self.status_code = status_code


class CircuitOpen(PeerUnavailable):
    """The peer's breaker is open, so the call failed without touching the network."""


@dataclass(frozen=True)
class PeerConfig:
    """How to reach one peer and how hard to try."""

    base_url: str
    api_key: str | None = None
    connect_timeout: float = 1.0
    read_timeout: float = 3.0
    retries: int = 2
    backoff_base: float = 0.1
    backoff_max: float = 2.0
    breaker_failures: int = 5
    breaker_reset_after: float = 10.0


class CircuitState(StrEnum):
    """Where a breaker stands; a ``StrEnum`` so it logs and serialises as text."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Consecutive-failure breaker for one peer.

    Closed: everything passes. After ``failures`` consecutive failures it opens
    and refuses everything. ``reset_after`` seconds later it lets exactly one
    trial through (half-open); the trial's outcome closes or re-opens it.
    """

    def __init__(
        self,
        *,
        failures: int = 5,
        reset_after: float = 10.0,
        name: str = "peer",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failures < 1:
            raise ValueError("failures must be at least 1")
        self._threshold = failures
        self._reset_after = reset_after
        self._name = name
        self._clock = clock
        # A PeerClient may be shared by tasks on several event loops/threads.
        self._lock = threading.Lock()
        self._state = CircuitState.CLOSED
        self._consecutive_failures = 0
        self._opened_at = 0.0
        self._trial_started_at = 0.0

    @property
    def state(self) -> CircuitState:
        with self._lock:
            return self._state

    def allow(self) -> bool:
        """Whether one attempt may go out now; may grant the half-open trial."""
        with self._lock:
            if self._state is CircuitState.CLOSED:
                return True
            now = self._clock()
            if self._state is CircuitState.OPEN:
                if now - self._opened_at < self._reset_after:
                    return False
                self._state = CircuitState.HALF_OPEN
                self._trial_started_at = now
                log.info("peer_breaker_half_open", peer=self._name)
                return True
            # Half-open with a trial in flight. If that trial never reports back
            # (its task was cancelled, or it raised something that is not the
            # peer's fault), grant another one rather than stay stuck forever.
            if now - self._trial_started_at >= self._reset_after:
                self._trial_started_at = now
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            if self._state is not CircuitState.CLOSED:
                log.info("peer_breaker_closed", peer=self._name)
            self._state = CircuitState.CLOSED
            self._consecutive_failures = 0

    def record_failure(self) -> None:
        with self._lock:
            self._consecutive_failures += 1
            if self._state is CircuitState.HALF_OPEN or (
                self._state is CircuitState.CLOSED and self._consecutive_failures >= self._threshold
            ):
                self._state = CircuitState.OPEN
                self._opened_at = self._clock()
                log.warning(
                    "peer_breaker_open",
                    peer=self._name,
                    consecutive_failures=self._consecutive_failures,
                    reset_after=self._reset_after,
                )


class PeerClient:
    """Pooled, retrying, breaker-guarded HTTP client for one named peer.

    Create one per peer at service start-up and share it; close it on shutdown
    (``aclose`` or ``async with``).
    """

    def __init__(
        self,
        name: str,
        config: PeerConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self._breaker = CircuitBreaker(
            failures=config.breaker_failures,
            reset_after=config.breaker_reset_after,
            name=name,
        )
        default_headers = {"User-Agent": _USER_AGENT}
        if config.api_key:
            default_headers["Authorization"] = f"Bearer {config.api_key}"
        self._client = httpx.AsyncClient(
            base_url=config.base_url,
            headers=default_headers,
            timeout=httpx.Timeout(
                connect=config.connect_timeout,
                read=config.read_timeout,
                write=config.read_timeout,
                pool=config.connect_timeout,
            ),
            transport=transport,
            # A redirect between services is a misconfiguration worth seeing,
            # and following it would resend the bearer key somewhere else.
            follow_redirects=False,
        )

    @property
    def breaker(self) -> CircuitBreaker:
        return self._breaker

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def get(self, path: str, **kwargs: Unpack[RequestOptions]) -> httpx.Response:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Unpack[RequestOptions]) -> httpx.Response:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Unpack[RequestOptions]) -> httpx.Response:
        return await self.request("PUT", path, **kwargs)

    async def patch(self, path: str, **kwargs: Unpack[RequestOptions]) -> httpx.Response:
        return await self.request("PATCH", path, **kwargs)

    async def delete(self, path: str, **kwargs: Unpack[RequestOptions]) -> httpx.Response:
        return await self.request("DELETE", path, **kwargs)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: object = None,
        params: Mapping[str, object] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        """Send one logical call, retrying where that is safe.

        Returns the peer's response for 1xx-4xx (a 429 that outlasts the
        retries included). Raises ``CircuitOpen`` if the breaker refuses the
        call and ``PeerUnavailable`` for unreachable peers, timeouts and 5xx.
        """
        method = method.upper()
        retryable = method in _IDEMPOTENT_METHODS or idempotency_key is not None
        send_headers = self._headers(headers, idempotency_key)
        attempts = 1 + max(0, self.config.retries)

        for attempt in range(1, attempts + 1):
            last = attempt == attempts
            if not self._breaker.allow():
                raise CircuitOpen(self.name, "circuit breaker is open")
            try:
                response = await self._client.request(
                    method,
                    path,
                    json=json,
                    params=params,  # type: ignore[arg-type]  # httpx accepts any primitive values
                    headers=send_headers,
                )
            except httpx.TransportError as exc:
                if not isinstance(exc, (*_RETRYABLE_ERRORS, *_NOT_SENT_ERRORS)):
                    # A local mistake (bad URL, unsupported scheme, ...) says
                    # nothing about the peer's health.
                    raise
                self._breaker.record_failure()
                may_retry = isinstance(exc, _NOT_SENT_ERRORS) or (retryable and isinstance(exc, _RETRYABLE_ERRORS))
                reason = type(exc).__name__
                if last or not may_retry:
                    raise PeerUnavailable(
                        self.name,
                        f"{method} {_route(path)} failed after {attempt} attempt(s): {reason}",
                    ) from exc
                await self._pause(method, path, attempt, reason, self._backoff(attempt))
                continue

            status = response.status_code
            if status >= 500:
                self._breaker.record_failure()
                if last or not retryable or status not in _RETRYABLE_STATUSES:
                    raise PeerUnavailable(
                        self.name,
                        f"{method} {_route(path)} answered {status} after {attempt} attempt(s)",
                        status_code=status,
                    )
                await self._pause(method, path, attempt, str(status), self._backoff(attempt))
                continue

            # Anything below 500, 429 included, proves the peer is up and
            # answering; only its own overload/outage statuses count against it.
            self._breaker.record_success()
            if status == 429 and retryable and not last:
                delay = self._retry_after(response)
                if delay is None:
                    delay = self._backoff(attempt)
                await self._pause(method, path, attempt, "429", delay)
                continue
            return response

        raise AssertionError("unreachable: the loop always returns or raises")

    def _headers(self, headers: Mapping[str, str] | None, idempotency_key: str | None) -> dict[str, str]:
        merged = dict(headers or {})
        rid = request_id.get()
        if rid:
            merged["X-Request-ID"] = rid
        if idempotency_key is not None:
            merged["Idempotency-Key"] = idempotency_key
        return merged

    def _backoff(self, attempt: int) -> float:
        # Full jitter keeps many callers that failed together from retrying together.
        ceiling = min(self.config.backoff_max, self.config.backoff_base * 2 ** (attempt - 1))
        return random.uniform(0.0, ceiling)

    def _retry_after(self, response: httpx.Response) -> float | None:
        value = response.headers.get("Retry-After")
        if value is None:
            return None
        value = value.strip()
        try:
            seconds = float(value)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                return None
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            seconds = (when - datetime.now(UTC)).total_seconds()
        if math.isnan(seconds):
            return None
        # The peer does not get to park our caller for longer than we allow.
        return min(max(seconds, 0.0), self.config.backoff_max)

    async def _pause(self, method: str, path: str, attempt: int, reason: str, delay: float) -> None:
        log.warning(
            "peer_retry",
            peer=self.name,
            method=method,
            path=_route(path),
            attempt=attempt,
            reason=reason,
            delay=round(delay, 3),
        )
        await asyncio.sleep(delay)
