"""PeerClient against real local servers: a scripted uvicorn app, a silent listener."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from structlog.testing import capture_logs

from crm_kit.context import request_id
from crm_kit.http import (
    CircuitBreaker,
    CircuitOpen,
    CircuitState,
    PeerClient,
    PeerConfig,
    PeerUnavailable,
)

# Small but not razor-thin, so a loaded CI machine does not turn passes into flakes.
FAST = PeerConfig(
    base_url="http://unused.invalid",
    connect_timeout=0.5,
    read_timeout=0.2,
    retries=2,
    backoff_base=0.01,
    backoff_max=0.05,
)


@dataclass(frozen=True)
class Hit:
    method: str
    headers: dict[str, str]
    client_port: int


@dataclass
class StubPeer:
    """A peer whose answers are scripted per key and which records every hit it gets."""

    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _plans: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    _hits: dict[str, list[Hit]] = field(default_factory=dict)

    def plan(self, key: str, *answers: int | tuple[int, dict[str, str]]) -> None:
        with self._lock:
            self._plans[key] = [a if isinstance(a, tuple) else (a, {}) for a in answers]

    def hits(self, key: str) -> list[Hit]:
        with self._lock:
            return list(self._hits.get(key, []))

    async def endpoint(self, request: Request) -> JSONResponse:
        key = request.path_params["key"]
        hit = Hit(
            method=request.method,
            headers=dict(request.headers),
            client_port=request.client.port if request.client else -1,
        )
        with self._lock:
            self._hits.setdefault(key, []).append(hit)
            plan = self._plans.get(key)
            status, headers = plan.pop(0) if plan else (200, {})
        body = {
            "method": hit.method,
            "headers": hit.headers,
            "client_port": hit.client_port,
        }
        return JSONResponse(body, status_code=status, headers=headers)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def stub() -> Iterator[StubPeer]:
    peer = StubPeer()
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    app = Starlette(routes=[Route("/s/{key}", peer.endpoint, methods=methods)])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "stub server thread died"
        assert time.monotonic() < deadline, "stub server did not start"
        time.sleep(0.01)
    peer.url = f"http://127.0.0.1:{port}/s"
    yield peer
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture
def key() -> str:
    # Each test scripts its own route, so tests share the server but no state.
    return uuid.uuid4().hex


@dataclass
class SilentServer:
    url: str
    connections: list[int]


@pytest.fixture
async def silent() -> AsyncIterator[SilentServer]:
    """Accepts TCP connections and never answers: what a hung peer looks like."""
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer.get_extra_info("peername")[1])
        try:
            await reader.read()  # until the client gives up and hangs up
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield SilentServer(url=f"http://127.0.0.1:{port}", connections=connections)
    server.close()
    await server.wait_closed()


def client(url: str, **overrides: Any) -> PeerClient:
    return PeerClient("customers", replace(FAST, base_url=url, **overrides))


# --- headers and pooling --------------------------------------------------------------


async def test_get_sends_bearer_user_agent_and_propagated_request_id(stub: StubPeer, key: str) -> None:
    token = request_id.set("req-123")
    try:
        async with client(stub.url, api_key="s3cret") as peer:
            response = await peer.get(f"/{key}", params={"q": "x"})
    finally:
        request_id.reset(token)

    assert response.status_code == 200
    echoed = response.json()["headers"]
    assert echoed["authorization"] == "Bearer s3cret"
    assert echoed["x-request-id"] == "req-123"
    assert echoed["user-agent"].startswith("crm-kit")
    assert "idempotency-key" not in echoed


async def test_no_request_id_or_auth_headers_when_unset(stub: StubPeer, key: str) -> None:
    async with client(stub.url) as peer:
        echoed = (await peer.get(f"/{key}")).json()["headers"]

    assert "x-request-id" not in echoed
    assert "authorization" not in echoed


async def test_calls_share_one_pooled_connection(stub: StubPeer, key: str) -> None:
    async with client(stub.url) as peer:
        first = await peer.get(f"/{key}")
        second = await peer.post(f"/{key}", json={"a": 1})

    assert first.json()["client_port"] == second.json()["client_port"]


# --- retries --------------------------------------------------------------------------


async def test_get_retried_after_two_503s(stub: StubPeer, key: str) -> None:
    stub.plan(key, 503, 503, 200)
    async with client(stub.url) as peer:
        response = await peer.get(f"/{key}")

    assert response.status_code == 200
    assert len(stub.hits(key)) == 3


async def test_get_raises_when_503_outlasts_retries(stub: StubPeer, key: str) -> None:
    stub.plan(key, 503, 503, 503, 200)
    async with client(stub.url) as peer:
        with pytest.raises(PeerUnavailable) as caught:
            await peer.get(f"/{key}")

    assert type(caught.value) is PeerUnavailable
    assert caught.value.peer == "customers"
    assert caught.value.status_code == 503
    assert "customers" in str(caught.value)
    assert "503" in str(caught.value)
    assert len(stub.hits(key)) == 3


async def test_500_is_not_retried_even_for_get(stub: StubPeer, key: str) -> None:
    stub.plan(key, 500, 200)
    async with client(stub.url) as peer:
        with pytest.raises(PeerUnavailable):
            await peer.get(f"/{key}")

    assert len(stub.hits(key)) == 1


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_other_idempotent_methods_are_retried(stub: StubPeer, key: str, method: str) -> None:
    stub.plan(key, 504, 200)
    async with client(stub.url) as peer:
        response = await peer.request(method, f"/{key}")

    assert response.status_code == 200
    assert len(stub.hits(key)) == 2


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_unkeyed_non_idempotent_call_is_not_retried_on_503(stub: StubPeer, key: str, method: str) -> None:
    stub.plan(key, 503, 200)
    async with client(stub.url) as peer:
        with pytest.raises(PeerUnavailable) as caught:
            await peer.request(method, f"/{key}", json={"amount": 10})

    assert caught.value.status_code == 503
    assert len(stub.hits(key)) == 1


async def test_post_with_idempotency_key_is_retried_with_the_same_key(stub: StubPeer, key: str) -> None:
    stub.plan(key, 503, 502, 201)
    async with client(stub.url) as peer:
        response = await peer.post(f"/{key}", json={"amount": 10}, idempotency_key="order-42")

    assert response.status_code == 201
    hits = stub.hits(key)
    assert [h.method for h in hits] == ["POST", "POST", "POST"]
    assert [h.headers.get("idempotency-key") for h in hits] == ["order-42"] * 3


async def test_4xx_is_returned_as_is_without_retry_and_keeps_breaker_closed(stub: StubPeer, key: str) -> None:
    stub.plan(key, 404, 409, 422)
    async with client(stub.url, breaker_failures=1) as peer:
        statuses = [(await peer.get(f"/{key}")).status_code for _ in range(3)]
        assert peer.breaker.state is CircuitState.CLOSED

    assert statuses == [404, 409, 422]
    assert len(stub.hits(key)) == 3


async def test_429_with_retry_after_zero_is_retried(stub: StubPeer, key: str) -> None:
    stub.plan(key, (429, {"Retry-After": "0"}), 200)
    async with client(stub.url) as peer:
        response = await peer.get(f"/{key}")

    assert response.status_code == 200
    assert len(stub.hits(key)) == 2


async def test_429_retry_after_is_capped_by_backoff_max(stub: StubPeer, key: str) -> None:
    stub.plan(key, (429, {"Retry-After": "3600"}), 200)
    async with client(stub.url, backoff_max=0.05) as peer:
        # Fails (rather than hangs) if the peer's hour-long Retry-After is obeyed.
        response = await asyncio.wait_for(peer.get(f"/{key}"), timeout=3)

    assert response.status_code == 200


async def test_429_retry_after_takes_precedence_over_backoff(
    stub: StubPeer, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pin the jitter to its ceiling so the backoff, if wrongly used, is a sure 2 s.
    monkeypatch.setattr("crm_kit.http.random.uniform", lambda _low, high: high)
    stub.plan(key, (429, {"Retry-After": "0"}), 200)
    started = time.monotonic()
    async with client(stub.url, backoff_base=2.0, backoff_max=2.0) as peer:
        response = await peer.get(f"/{key}")

    assert response.status_code == 200
    assert time.monotonic() - started < 1.5


async def test_429_that_outlasts_retries_is_returned(stub: StubPeer, key: str) -> None:
    stub.plan(key, *[(429, {"Retry-After": "0"})] * 4)
    async with client(stub.url) as peer:
        response = await peer.get(f"/{key}")

    assert response.status_code == 429
    assert len(stub.hits(key)) == 3


# --- unreachable and hung peers -------------------------------------------------------


async def test_read_timeout_on_get_is_retried_then_raises(silent: SilentServer) -> None:
    started = time.monotonic()
    async with client(silent.url) as peer:
        with pytest.raises(PeerUnavailable, match="ReadTimeout"):
            await peer.get("/anything")
    elapsed = time.monotonic() - started

    # 3 attempts x 0.2 s read timeout plus tiny backoffs; generous for slow machines.
    assert elapsed < 10
    assert len(silent.connections) == 3


async def test_read_timeout_on_plain_post_is_not_retried(silent: SilentServer) -> None:
    async with client(silent.url) as peer:
        with pytest.raises(PeerUnavailable, match="ReadTimeout"):
            await peer.post("/charge", json={"amount": 10})

    # The peer may have acted on the POST; sending it again could charge twice.
    assert len(silent.connections) == 1


async def test_connection_refused_raises_after_retrying_even_a_post() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    with capture_logs() as logs:
        async with client(url) as peer:
            with pytest.raises(PeerUnavailable, match="ConnectError") as caught:
                await peer.post("/charge", json={"card": "4111-secret"})

    assert caught.value.status_code is None
    retries = [e for e in logs if e["event"] == "peer_retry"]
    assert len(retries) == 2  # a refused connection never delivered the POST
    assert all(e["peer"] == "customers" for e in retries)
    assert "4111-secret" not in repr(logs)


# --- circuit breaker ------------------------------------------------------------------


async def test_breaker_opens_fails_fast_then_half_open_trial_closes_it(stub: StubPeer, key: str) -> None:
    stub.plan(key, 503, 503, 503)
    async with client(stub.url, retries=0, breaker_failures=3, breaker_reset_after=0.2) as peer:
        with capture_logs() as logs:
            for _ in range(3):
                with pytest.raises(PeerUnavailable) as caught:
                    await peer.get(f"/{key}")
                assert type(caught.value) is PeerUnavailable
        assert any(e["event"] == "peer_breaker_open" for e in logs)

        started = time.monotonic()
        with pytest.raises(CircuitOpen) as caught_open:
            await peer.get(f"/{key}")
        assert time.monotonic() - started < 0.1
        assert caught_open.value.peer == "customers"
        assert len(stub.hits(key)) == 3  # failed fast: the peer never saw the call

        await asyncio.sleep(0.3)
        response = await peer.get(f"/{key}")  # the half-open trial; the plan is now empty
        assert response.status_code == 200
        assert peer.breaker.state is CircuitState.CLOSED
        assert (await peer.get(f"/{key}")).status_code == 200

    assert len(stub.hits(key)) == 5


async def test_failed_half_open_trial_reopens_the_breaker(stub: StubPeer, key: str) -> None:
    stub.plan(key, 503, 503)
    async with client(stub.url, retries=0, breaker_failures=1, breaker_reset_after=0.2) as peer:
        with pytest.raises(PeerUnavailable):
            await peer.get(f"/{key}")
        await asyncio.sleep(0.3)
        with pytest.raises(PeerUnavailable) as trial:
            await peer.get(f"/{key}")
        assert not isinstance(trial.value, CircuitOpen)  # the trial did reach the peer
        assert peer.breaker.state is CircuitState.OPEN
        with pytest.raises(CircuitOpen):
            await peer.get(f"/{key}")

    assert len(stub.hits(key)) == 2


async def test_breaker_opening_mid_retry_stops_the_retries(stub: StubPeer, key: str) -> None:
    stub.plan(key, 503, 503, 503, 503)
    async with client(stub.url, retries=3, breaker_failures=2) as peer:
        with pytest.raises(CircuitOpen):
            await peer.get(f"/{key}")

    assert len(stub.hits(key)) == 2


def state(breaker: CircuitBreaker) -> CircuitState:
    # A call, not the property, so type checkers do not carry a narrowed state
    # across the record_*() calls that change it.
    return breaker.state


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_half_open_lets_exactly_one_trial_through() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failures=2, reset_after=10.0, clock=clock)
    breaker.record_failure()
    assert breaker.allow()
    breaker.record_failure()
    assert state(breaker) is CircuitState.OPEN
    assert not breaker.allow()

    clock.now = 10.0
    assert breaker.allow()
    assert state(breaker) is CircuitState.HALF_OPEN
    assert not breaker.allow()  # a second caller while the trial is in flight

    breaker.record_success()
    assert state(breaker) is CircuitState.CLOSED
    assert breaker.allow()


def test_failed_trial_reopens_for_a_full_reset_period() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failures=3, reset_after=10.0, clock=clock)
    for _ in range(3):
        breaker.record_failure()
    clock.now = 10.0
    assert breaker.allow()
    clock.now = 12.0
    breaker.record_failure()
    assert state(breaker) is CircuitState.OPEN
    clock.now = 21.0
    assert not breaker.allow()  # the new period counts from the failed trial
    clock.now = 22.0
    assert breaker.allow()


def test_success_resets_the_consecutive_failure_count() -> None:
    breaker = CircuitBreaker(failures=2, clock=FakeClock())
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert state(breaker) is CircuitState.CLOSED
    breaker.record_failure()
    assert state(breaker) is CircuitState.OPEN


def test_abandoned_half_open_trial_is_granted_again_after_reset_period() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failures=1, reset_after=5.0, clock=clock)
    breaker.record_failure()
    clock.now = 5.0
    assert breaker.allow()  # this trial's task is then cancelled and never reports back
    clock.now = 9.0
    assert not breaker.allow()
    clock.now = 10.0
    assert breaker.allow()
