"""Faults with real processes: a service killed in the middle of work, a peer that hangs, two replicas on
one PostgreSQL database. Afterwards every record is there exactly once and nothing ran twice."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from conftest import (
    RunningService,
    client_for,
    free_port,
    purchase_feed,
    recommend_env,
    start_service,
    stop_service,
    wait_for,
)
from sqlalchemy import select, update

import complaint_api.models  # noqa: F401  (every table, for the foreign keys)
from complaint_api.complaints.models import Complaint, ComplaintEvent
from complaint_api.webhooks.models import WebhookDelivery
from complaint_api.webhooks.service import LEASE
from crm_kit.db import Database
from crm_kit.testing import BACKENDS, temporary_database


def _orders(customer_id: str, count: int, tag: str) -> list[dict[str, Any]]:
    start = dt.datetime(2026, 8, 1, tzinfo=dt.UTC)
    return [
        {"order_id": f"KILL-{tag}-{i:05d}", "customer_id": customer_id,
         "purchased_at": (start + dt.timedelta(minutes=i)).isoformat(),
         "items": [{"sku": f"S{i % 50}", "quantity": "1", "unit_price": "3.50"},
                   {"sku": f"S{(i * 7) % 50}", "quantity": "2", "unit_price": "1.20"}]}
        for i in range(count)
    ]  # fmt: skip


def _kill(service: RunningService) -> None:
    assert service.process is not None
    service.process.kill()  # SIGKILL: no shutdown, the transaction in flight is cut off
    service.process.wait()


# A backend of the test's database waiting for a lock inside a transaction that has written: the import mid-way.
WAITING_WRITER = """
    SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
    AND backend_xid IS NOT NULL
"""


async def test_a_bulk_import_killed_mid_way_and_retried_stores_every_order_once(tmp_path: Path) -> None:
    async with temporary_database("postgresql", "fault_customer_api", tmp_path) as url:
        first = await asyncio.to_thread(start_service, "customer-api", url, tmp_path)
        with client_for(first) as client:
            customer = client.post("/v1/customers", json={"name": "批量导入", "phone": "13900001111"}).json()["id"]
        orders = _orders(customer, 6000, uuid.uuid4().hex[:6])
        outcome: dict[str, Any] = {}

        def send() -> None:
            try:
                with client_for(first) as client:
                    outcome["response"] = client.post("/v1/purchases/bulk", json={"purchases": orders})
            except httpx.HTTPError as exc:
                outcome["error"] = exc

        # The import copies its orders, then their lines: holding purchase_lines stops it in between, with every
        # order written and none committed, however fast the machine. Then the service is killed.
        # pg_stat_activity is read from its own connection: within a transaction it is a snapshot.
        dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        holder, watcher = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
        try:
            async with holder.transaction():
                await holder.execute("LOCK TABLE purchase_lines IN SHARE MODE")
                sender = threading.Thread(target=send)
                sender.start()
                assert await _eventually(lambda: _fetch_positive(watcher, WAITING_WRITER), 60), "the import never began"
                await asyncio.to_thread(_kill, first)
            await asyncio.to_thread(sender.join)
        finally:
            await asyncio.to_thread(_kill, first)  # already gone unless a step above failed
            await holder.close()
            await watcher.close()
        assert "error" in outcome, "the import finished before the kill; nothing was tested"
        second = await asyncio.to_thread(start_service, "customer-api", url, tmp_path)
        try:
            with client_for(second) as client:
                retried = client.post("/v1/purchases/bulk", json={"purchases": orders}).json()
                assert retried["created"] + retried["existing"] == len(orders) and retried["rejected"] == 0
                in_feed = [o["order_id"] for o in purchase_feed(client) if o["customer_id"] == customer]
                assert sorted(in_feed) == sorted(o["order_id"] for o in orders)  # each order once: none lost or doubled
        finally:
            stop_service(second)


async def _fetch_positive(connection: asyncpg.Connection, query: str) -> bool:
    return bool(await connection.fetchval(query))


class HangingServer:
    """Accepts connections and never answers: the worst kind of peer."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stopped.is_set():
            try:
                connection, _ = self.sock.accept()
                self.held.append(connection)
            except OSError:
                continue

    def close(self) -> None:
        self.stopped.set()
        for connection in self.held:
            connection.close()
        self.sock.close()


@pytest.fixture
def hanging() -> Iterator[HangingServer]:
    server = HangingServer()
    yield server
    server.close()


def test_a_hanging_peer_leaves_intake_responsive(hanging: HangingServer, tmp_path: Path) -> None:
    peer = f"http://127.0.0.1:{hanging.port}"
    env = {"COMPLAINT_API_CUSTOMER_API_URL": peer, "COMPLAINT_API_RECOMMEND_API_URL": peer,
           "COMPLAINT_API_SWEEP_SECONDS": "0.3"}  # fmt: skip
    service = start_service("complaint-api", f"sqlite+aiosqlite:///{tmp_path}/c.db", tmp_path, env)
    try:
        with client_for(service) as client:
            timings = []
            for i in range(30):
                body = {"customer_id": str(uuid.uuid4()), "channel": "phone", "category": "delivery",
                        "severity": "low", "subject": f"送货延误 {i}", "description": "订单还没到。"}  # fmt: skip
                started = time.perf_counter()
                taken = client.post("/v1/complaints", json=body)
                timings.append(time.perf_counter() - started)
                assert taken.status_code == 201 and taken.json()["snapshot_status"] == "pending"
            # The lookup gives up after COMPLAINT_API_INTAKE_LOOKUP_SECONDS (0.5 s), and once the breaker
            # opens it is not even tried: no intake waits on the hanging peer for long.
            timings.sort()
            assert timings[-1] < 3.0 and statistics.median(timings) < 1.0, timings
            assert client.get("/readyz").status_code == 200
    finally:
        stop_service(service)


def _exercise_replicas(customer_api: RunningService, customers: httpx.Client, url: str, tmp_path: Path) -> None:
    who = customers.post("/v1/customers", json={"name": "双副本", "phone": "13700002222"}).json()["id"]
    assert customers.post("/v1/purchases/bulk", json={"purchases": _orders(who, 300, "replica")}).status_code == 200
    total_orders = len(purchase_feed(customers))
    env = recommend_env(customer_api, RECOMMEND_API_SYNC_SECONDS="0.1", RECOMMEND_API_SYNC_PAGE_SIZE="50")
    replicas = [start_service("recommend-api", url, tmp_path, env) for _ in range(2)]
    clients = [client_for(r) for r in replicas]
    try:

        def caught_up() -> bool:
            return all(c.get("/v1/sync/status").json()["purchases"]["applied"] >= total_orders for c in clients)

        deadline = time.monotonic() + 60
        while not caught_up() and time.monotonic() < deadline:
            time.sleep(0.2)
        # Both replicas followed the feed at once; each page was applied by one of them only.
        assert [c.get("/v1/sync/status").json()["purchases"]["applied"] for c in clients] == [total_orders] * 2
        requested = [c.post("/v1/models", json={"evaluate": False}).json()["version"] for c in clients]
        assert requested[0] == requested[1]  # the second request found the first build pending

        def served() -> list[int]:
            return [c.get("/v1/models/current").json().get("version", 0) for c in clients]

        while min(served()) < requested[0] and time.monotonic() < deadline + 60:
            time.sleep(0.2)
        assert served() == [requested[0], requested[0]]
        build = clients[0].get(f"/v1/models/{requested[0]}").json()
        assert build["status"] == "ready" and build["builder"]
        mine = [c.get(f"/v1/customers/{who}/recommendations").json() for c in clients]
        assert mine[0] == mine[1] and mine[0]["personalised"] is True
    finally:
        for client in clients:
            client.close()
        for replica in replicas:
            stop_service(replica)


async def test_two_replicas_on_one_database_sync_and_build_once_and_serve_the_same_version(
    customer_api: RunningService, customers: httpx.Client, backend_of: dict[str, str], tmp_path: Path
) -> None:
    if backend_of["customer-api"] != "postgresql":
        pytest.skip("replicas share a PostgreSQL database: the PostgreSQL half of the stack runs this")
    async with temporary_database("postgresql", "replicas_recommend_api", tmp_path) as url:
        await asyncio.to_thread(_exercise_replicas, customer_api, customers, url, tmp_path)


async def _make_overdue(database_url: str) -> None:
    """Every complaint's first response and resolution fall due an hour ago."""
    database = Database(database_url)
    hour_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    try:
        async with database.session_scope() as session:
            await session.execute(update(Complaint).values(first_response_due=hour_ago, resolution_due=hour_ago))
    finally:
        await database.dispose()


def _take_complaints(replicas: list[RunningService], count: int) -> list[str]:
    ids = []
    for i in range(count):
        with client_for(replicas[i % len(replicas)]) as client:
            body = {"customer_id": str(uuid.uuid4()), "channel": "app", "category": "delivery", "severity": "low",
                    "subject": f"送货延误 {i}", "description": "订单还没到。"}  # fmt: skip
            ids.append(client.post("/v1/complaints", json=body).json()["id"])
    return ids


def _breaches(replica: RunningService, ids: list[str]) -> list[int]:
    with client_for(replica) as client:
        return [
            sum(e["type"] == "sla_breached" for e in client.get(f"/v1/complaints/{i}/timeline").json()["items"])
            for i in ids
        ]


def _wait_for_breaches(replica: RunningService, ids: list[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and min(_breaches(replica, ids)) < 2:
        time.sleep(0.3)


async def test_two_complaint_api_replicas_flag_each_breach_once(tmp_path: Path) -> None:
    peer_down = {"COMPLAINT_API_CUSTOMER_API_URL": "http://127.0.0.1:9", "COMPLAINT_API_SWEEP_SECONDS": "0.1"}
    async with temporary_database("postgresql", "replicas_complaint_api", tmp_path) as url:
        replicas = [start_service("complaint-api", url, tmp_path, peer_down) for _ in range(2)]
        try:
            ids = await asyncio.to_thread(_take_complaints, replicas, 40)
            await _make_overdue(url)
            await asyncio.to_thread(_wait_for_breaches, replicas[0], ids)
            await asyncio.sleep(1)  # more sweeps by both replicas: still once per target
            assert await asyncio.to_thread(_breaches, replicas[1], ids) == [2] * len(ids)
        finally:
            for replica in replicas:
                stop_service(replica)


class Backlogged(ThreadingHTTPServer):
    """A test server that takes many connections at once (the default backlog of 5 drops the rest, whose
    senders then wait a second before trying again)."""

    request_queue_size = 128


class SlowReceiver:
    """A webhook receiver that takes its time answering, so a sender can be killed mid-delivery."""

    def __init__(self, delay: float, port: int = 0) -> None:
        received: list[tuple[str, dict[str, Any]]] = []  # (delivery id, body)
        self.received = received
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(delay)
                with lock:
                    received.append((self.headers["X-CRM-Delivery"], json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = Backlogged(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def complaints(self) -> set[str]:
        return {body["complaint"]["id"] for _, body in list(self.received)}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_webhook_delivery_killed_mid_way_delivers_every_event_after_restart(tmp_path: Path) -> None:
    receiver = SlowReceiver(delay=0.15)
    env = {"COMPLAINT_API_CUSTOMER_API_URL": "http://127.0.0.1:9", "COMPLAINT_API_WEBHOOK_ALLOW_PRIVATE": "true"}
    database = f"sqlite+aiosqlite:///{tmp_path}/complaints.db"
    first = start_service("complaint-api", database, tmp_path, env)
    try:
        with client_for(first) as client:
            hook = {"url": receiver.url, "events": ["complaint.created"], "secret": "fault-test-secret-0001"}
            assert client.post("/v1/webhooks", json=hook).status_code == 201
        ids = _take_complaints([first], 30)
        deadline = time.monotonic() + 30
        while len(receiver.received) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        _kill(first)  # deliveries in flight and queued ones are cut off here
        assert len(receiver.complaints()) < len(ids), "everything arrived before the kill; nothing was tested"
        second = start_service("complaint-api", database, tmp_path, env)
        try:
            deadline = time.monotonic() + 90
            while receiver.complaints() != set(ids) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert receiver.complaints() == set(ids)  # every event delivered at least once
            per_delivery: dict[str, set[str]] = {}
            for delivery_id, body in receiver.received:
                per_delivery.setdefault(delivery_id, set()).add(body["complaint"]["id"])
            # A repeat carries the same delivery id, so receivers can drop it.
            assert len(per_delivery) == len(ids) and all(len(c) == 1 for c in per_delivery.values())
        finally:
            stop_service(second)
    finally:
        receiver.close()


class PostgresServer:
    """A PostgreSQL server of the test's own (initdb in a temporary directory), so it can be restarted
    without disturbing the other tests' databases."""

    def __init__(self) -> None:
        self.bin = next(Path("/usr/lib/postgresql").glob("*/bin"), None)
        if self.bin is None or shutil.which("runuser") is None:
            pytest.skip("needs PostgreSQL's server binaries and runuser to run a server of its own")
        # Outside pytest's temporary tree, which the postgres user may not enter.
        self.directory = Path(tempfile.mkdtemp(prefix="crm-test-pg-"))
        self.data = self.directory / "pgdata"
        self.data.mkdir()
        shutil.chown(self.directory, "postgres")
        shutil.chown(self.data, "postgres")
        self.port = free_port()
        self._as_postgres([str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"])
        self.start()

    def _as_postgres(self, command: list[str]) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *command], check=True, capture_output=True)

    def _ctl(self, action: str) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1"
        self._as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-w", "-m", "fast",
                           "-l", str(self.data / "server.log"), action])  # fmt: skip

    def start(self) -> None:
        self._ctl("start")

    def stop(self) -> None:
        self._ctl("stop")

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"


def test_a_postgresql_restart_is_survived_without_restarting_the_service(tmp_path: Path) -> None:
    server = PostgresServer()
    service: RunningService | None = None
    try:
        subprocess.run(
            [str(Path(sys.executable).parent / "customer-api"), "migrate"],
            env={**os.environ, "DATABASE_URL": server.url, "CRM_ENV": "test"}, check=True, capture_output=True,
        )  # fmt: skip
        service = start_service("customer-api", server.url, tmp_path)
        created: list[str] = []
        outage: list[tuple[int, float, str]] = []  # status, seconds, content type of answers during the outage
        with client_for(service) as client:

            def register(i: int) -> httpx.Response:
                return client.post("/v1/customers", json={"name": f"重启{i}", "phone": f"1360000{i:04d}"})

            for i in range(20):
                created.append(register(i).json()["id"])
            server.stop()
            for i in range(20, 25):
                started = time.monotonic()
                answer = register(i)
                outage.append((answer.status_code, time.monotonic() - started, answer.headers["content-type"]))
            server.start()
            # The service recovers by itself: the next requests succeed (a stale pooled connection may cost one).
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                answer = register(25)
                if answer.status_code == 201:
                    created.append(answer.json()["id"])
                    break
                time.sleep(0.5)
            for i in range(26, 36):
                answer = register(i)
                assert answer.status_code == 201, answer.text
                created.append(answer.json()["id"])
            stored = client.get("/v1/customers", params={"q": "重启", "limit": 500}).json()["items"]
        assert {(status, kind.split(";")[0]) for status, _, kind in outage} == {(503, "application/problem+json")}
        assert max(seconds for _, seconds, _ in outage) < 10  # fails fast rather than hanging
        # Nothing half-applied: exactly the acknowledged customers are stored.
        assert sorted(c["id"] for c in stored) == sorted(created)
    finally:
        if service is not None:
            stop_service(service)
        server.stop()
        shutil.rmtree(server.directory, ignore_errors=True)


def _take_concurrently(service: RunningService, count: int, workers: int = 4) -> list[str]:
    """`count` complaints taken by `workers` clients at once; returns their ids."""

    def take(worker: int) -> list[str]:
        with client_for(service) as client:
            ids = []
            for i in range(worker, count, workers):
                body = {"customer_id": str(uuid.uuid4()), "channel": "web", "category": "delivery", "severity": "low",
                        "subject": f"超时未送达 {i}", "description": "承诺的送货时间已过。"}  # fmt: skip
                taken = client.post("/v1/complaints", json=body)
                assert taken.status_code == 201, taken.text
                ids.append(taken.json()["id"])
            return ids

    with ThreadPoolExecutor(workers) as pool:
        return [i for ids in pool.map(take, range(workers)) for i in ids]


def _pages(client: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a paged list."""
    items: list[dict[str, Any]] = []
    query: dict[str, Any] = {"limit": 500, **params}
    while True:
        page = client.get(path, params=query).json()
        items += page["items"]
        if not page["next_cursor"]:
            return items
        query["cursor"] = page["next_cursor"]


async def _breach_events(database: Database) -> list[tuple[str, str]]:
    """(complaint id, target) of every `sla_breached` event on the timelines, i.e. in the outbox."""
    async with database.session_scope(read_only=True) as session:
        query = select(ComplaintEvent.complaint_id, ComplaintEvent.data).where(ComplaintEvent.type == "sla_breached")
        return [(str(complaint_id), data["target"]) for complaint_id, data in await session.execute(query)]


async def _eventually(check: Callable[[], Awaitable[bool]], seconds: float) -> bool:
    """Poll `check` until it holds (True) or `seconds` have passed (False)."""
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def _without_stall(
    progress: Callable[[], set[Any]],
    done: Callable[[set[Any]], bool],
    what: str,
    stall: float = 25,
    seconds: float = 180,
) -> None:
    """Poll until ``done(progress())``; fail when ``progress()`` gains nothing for ``stall`` seconds first, or after
    ``seconds`` in all."""
    start = last_gain = time.monotonic()
    seen = 0
    while not done(got := progress()):
        now = time.monotonic()
        if len(got) > seen:
            seen, last_gain = len(got), now
        assert now - last_gain < stall, f"{what}: nothing new for {stall:.0f} s, {seen} so far"
        assert now - start < seconds, f"timed out waiting for {what}: {seen} so far"
        time.sleep(0.1)


HOLD_LOCK = 80_808
# After the first sweep pass, a pass that inserts breach events waits for an advisory lock the test holds:
# its event ids are taken, it cannot commit.
HOLD_SWEEP = f"""
CREATE FUNCTION hold_sweep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inserted WHERE type = 'sla_breached') AND EXISTS (
        SELECT 1 FROM complaint_events WHERE type = 'sla_breached' AND id < (SELECT min(id) FROM inserted)
    ) THEN
        PERFORM pg_advisory_xact_lock_shared({HOLD_LOCK});
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER hold_sweep AFTER INSERT ON complaint_events REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION hold_sweep();
"""
HELD = """
    SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
    AND wait_event = 'advisory'
"""


@contextlib.asynccontextmanager
async def _second_sweep_held(url: str) -> AsyncIterator[Callable[[], Awaitable[bool]]]:
    """Hold complaint-api's second SLA sweep pass on PostgreSQL in the middle of its transaction; yields a check
    that it is held. A kill then cuts off a transaction whose event ids are taken: a gap in the timeline's ids,
    which webhook fan-out has to get past. Released and removed on leaving."""
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.execute(f"SELECT pg_advisory_lock({HOLD_LOCK})")
        await connection.execute(HOLD_SWEEP)

        async def held() -> bool:
            return bool(await connection.fetchval(HELD))

        yield held
    finally:
        await connection.execute(f"SELECT pg_advisory_unlock({HOLD_LOCK})")
        await connection.execute("DROP TRIGGER hold_sweep ON complaint_events; DROP FUNCTION hold_sweep()")
        await connection.close()


async def _leased(database: Database) -> set[str]:
    """Complaints with a delivery claimed by a sender and not settled: after a kill it waits for its lease to end,
    and the complaint's later deliveries wait for it."""
    async with database.session_scope(read_only=True) as session:
        query = select(WebhookDelivery.complaint_id, WebhookDelivery.last_attempt_at, WebhookDelivery.next_attempt_at)
        rows = await session.execute(query.where(WebhookDelivery.status == "pending", WebhookDelivery.attempts > 0))
        return {str(complaint_id) for complaint_id, tried, next_try in rows if next_try - tried >= LEASE}


@pytest.mark.parametrize("backend", BACKENDS)
async def test_complaint_api_killed_mid_sla_sweep_flags_and_delivers_every_breach_once(
    backend: str, tmp_path: Path
) -> None:
    # A sweep pass flags at most 200 complaints in one transaction, so 600 overdue complaints take three passes.
    env = {"COMPLAINT_API_CUSTOMER_API_URL": "http://127.0.0.1:9", "COMPLAINT_API_RECOMMEND_API_URL": "http://127.0.0.1:9",
           "COMPLAINT_API_WEBHOOK_ALLOW_PRIVATE": "true", "COMPLAINT_API_SWEEP_SECONDS": "0.1"}  # fmt: skip
    count = 600
    # The receiver is down until after the kill: deliveries tried before it fail and are retried later, and none
    # is in flight at the kill (that one would wait out its lease, as the webhook test above shows).
    receiver_port = free_port()
    receiver: SlowReceiver | None = None
    async with temporary_database(backend, "fault_sla_sweep", tmp_path) as url:
        database = Database(url)
        first = start_service("complaint-api", url, tmp_path, env)
        try:
            ids = await asyncio.to_thread(_take_concurrently, first, count)
            expected = {(i, target) for i in ids for target in ("first_response", "resolution")}
            with client_for(first) as client:
                hook = {"url": f"http://127.0.0.1:{receiver_port}/hook", "events": ["complaint.sla_breached"],
                        "secret": "fault-test-secret-0002"}  # fmt: skip
                created = client.post("/v1/webhooks", json=hook)
                assert created.status_code == 201, created.text
                webhook_id = created.json()["id"]

            async def part_way() -> bool:
                return 0 < len(await _breach_events(database)) < len(expected)

            if backend == "postgresql":
                async with _second_sweep_held(url) as held:
                    await _make_overdue(url)  # both targets of every complaint fall due together
                    assert await _eventually(held, 30), "no sweep pass was held"
                    _kill(first)  # the first pass committed, the second is cut off before its commit
            else:
                await _make_overdue(url)
                assert await _eventually(part_way, 30), "the sweep was never seen part-way"
                _kill(first)  # some complaints flagged, the rest not yet (or in the transaction cut off)
            at_kill = len(await _breach_events(database))
            assert 0 < at_kill < len(expected), f"{at_kill} breaches stored at the kill: the sweep was not part-way"
            leased = await _leased(database)
            receiver = SlowReceiver(delay=0.0, port=receiver_port)
            second = start_service("complaint-api", url, tmp_path, env)
            try:

                async def all_flagged() -> bool:
                    return len(await _breach_events(database)) >= len(expected)

                await _eventually(all_flagged, 30)
                # Each target of each complaint breached exactly once: one event in the outbox and its flag.
                assert sorted(await _breach_events(database)) == sorted(expected)
                with client_for(second) as client:
                    flagged = await asyncio.to_thread(_pages, client, "/v1/complaints", breached="true")
                assert sorted(c["id"] for c in flagged) == sorted(ids)
                assert all(c["first_response_breached"] and c["resolution_breached"] for c in flagged)

                def delivered() -> set[tuple[str, str]]:
                    assert receiver is not None
                    return {(body["complaint"]["id"], body["data"]["target"]) for _, body in list(receiver.received)}

                # Delivered without waiting out the 60 s that a gap in the event ids takes to settle (no pause of
                # 25 s with nothing delivered: a slow machine slows deliveries, a stall stops them), but for
                # complaints with a delivery in flight at the kill (rare with the receiver down): those wait for
                # the lease.
                prompt = {(i, target) for i, target in expected if i not in leased}
                await asyncio.to_thread(_without_stall, delivered, lambda got: got >= prompt, "breaches delivered")
                await asyncio.to_thread(wait_for, lambda: delivered() == expected, "every breach delivered", 90)
                per_delivery: dict[str, set[tuple[str, str]]] = {}
                for delivery_id, body in receiver.received:
                    assert body["id"] == delivery_id and body["event"] == "complaint.sla_breached"
                    per_delivery.setdefault(delivery_id, set()).add((body["complaint"]["id"], body["data"]["target"]))
                # One delivery id per breach: a repeat (there may be none) is dropped by its id.
                assert len(per_delivery) == len(expected) and all(len(b) == 1 for b in per_delivery.values())
                with client_for(second) as client:
                    # The receiver counts a delivery before it answers; the sender records it once answered.
                    path = f"/v1/webhooks/{webhook_id}/deliveries"
                    await asyncio.to_thread(
                        wait_for, lambda: not _pages(client, path, status="pending"), "deliveries recorded", 10
                    )
                    log = await asyncio.to_thread(_pages, client, path)
                assert len(log) == len(expected) and {d["status"] for d in log} == {"delivered"}
            finally:
                stop_service(second)
        finally:
            stop_service(first)
            await database.dispose()
            if receiver is not None:
                receiver.close()


class SlowCustomerApi:
    """A stand-in for customer-api that answers everything, but only after `delay` seconds, and counts the
    customer lookups that reach it."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.lookups = 0
        lock = threading.Lock()
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                lookup = path.startswith("/v1/customers/")
                if lookup:
                    with lock:
                        peer.lookups += 1
                time.sleep(peer.delay)
                body: dict[str, Any]
                if lookup:
                    status, body = 200, {"id": path.rsplit("/", 1)[1], "name": "王女士", "tier": "regular",
                                         "type": "individual", "created_at": "2025-03-01T08:00:00Z"}  # fmt: skip
                elif path == "/v1/feeds/customers":
                    status, body = 200, {"items": [], "next_cursor": None, "has_more": False}
                else:
                    status, body = 404, {"status": 404}
                payload = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # complaint-api stopped waiting for the answer

            def log_message(self, *args: Any) -> None:
                return

        self.server = Backlogged(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _intake_stream(
    service: RunningService, count: int, workers: int, pause: float
) -> list[tuple[float, httpx.Response]]:
    """`count` complaints from `workers` clients at once, each pausing `pause` seconds after each one; returns
    (seconds taken, response) of each."""

    def take(worker: int) -> list[tuple[float, httpx.Response]]:
        answers = []
        with client_for(service) as client:
            for i in range(worker, count, workers):
                body = {"customer_id": str(uuid.uuid4()), "channel": "phone", "category": "product_quality",
                        "severity": "low", "subject": f"商品破损 {i}", "description": "收到时外包装已破。"}  # fmt: skip
                started = time.perf_counter()
                answer = client.post("/v1/complaints", json=body)
                answers.append((time.perf_counter() - started, answer))
                time.sleep(pause)
        return answers

    with ThreadPoolExecutor(workers) as pool:
        return [answer for answers in pool.map(take, range(workers)) for answer in answers]


def test_a_slow_peer_leaves_intake_latency_bounded_and_snapshots_are_completed_later(tmp_path: Path) -> None:
    lookup_seconds = 0.5
    peer = SlowCustomerApi(delay=2.0)  # answers, but four times slower than intake waits for it
    env = {"COMPLAINT_API_CUSTOMER_API_URL": peer.url, "COMPLAINT_API_RECOMMEND_API_URL": "http://127.0.0.1:9",
           "COMPLAINT_API_INTAKE_LOOKUP_SECONDS": str(lookup_seconds),
           "COMPLAINT_API_SWEEP_SECONDS": "0.3"}  # fmt: skip
    service = start_service("complaint-api", f"sqlite+aiosqlite:///{tmp_path}/c.db", tmp_path, env)
    ready: list[int] = []
    streaming = threading.Event()

    def watch_readiness() -> None:
        with client_for(service) as client:
            while streaming.is_set():
                ready.append(client.get("/readyz").status_code)
                time.sleep(0.2)

    try:
        streaming.set()
        watcher = threading.Thread(target=watch_readiness)
        watcher.start()
        try:
            # About 12 s of intakes: longer than the breaker stays open (10 s), so it is tried again meanwhile.
            answers = _intake_stream(service, count=150, workers=5, pause=0.35)
        finally:
            streaming.clear()
            watcher.join()
        lookups = peer.lookups
        assert [a.status_code for _, a in answers] == [201] * len(answers), {a.text for _, a in answers}
        assert {a.json()["snapshot_status"] for _, a in answers} == {"pending"}
        # Intake waits at most COMPLAINT_API_INTAKE_LOOKUP_SECONDS for the peer, and not at all once the breaker
        # is open: generous bounds tied to that setting, not to this machine's speed.
        timings = sorted(seconds for seconds, _ in answers)
        p99 = statistics.quantiles(timings, n=100)[98]
        assert p99 < lookup_seconds + 2.5 and statistics.median(timings) < lookup_seconds + 0.5, timings
        assert ready and set(ready) == {200}
        # The breaker opened: most intakes did not call the slow peer at all.
        assert lookups < len(answers) / 2, f"{lookups} lookups reached the peer for {len(answers)} intakes"
        taken = sorted(a.json()["id"] for _, a in answers)
        with client_for(service) as client:
            assert sorted(c["id"] for c in _pages(client, "/v1/complaints")) == taken  # each stored once
            peer.delay = 0.0  # the peer is quick again: the pending snapshots are filled in

            def completed() -> bool:
                return {c["snapshot_status"] for c in _pages(client, "/v1/complaints")} == {"ok"}

            wait_for(completed, "every snapshot completed", 45)
            assert all(c["customer_snapshot"]["tier"] == "regular" for c in _pages(client, "/v1/complaints"))
    finally:
        stop_service(service)
        peer.close()
