"""Cross-service tests: the services run as real processes and are driven over real HTTP.

Point them at a running stack (e.g. `docker compose up`) with `CUSTOMER_API_URL`, `COMPLAINT_API_URL`,
`RECOMMEND_API_URL` and `CRM_TEST_API_KEY`;
otherwise each test session starts the services itself on free ports, on SQLite and, when it is
reachable, on PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from crm_kit.testing import BACKENDS, temporary_database

BIN = Path(sys.executable).parent
DEV_KEY = "dev-admin-key"


@dataclass
class RunningService:
    name: str
    base_url: str
    api_key: str
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    database_url: str | None = None

    def log_lines(self) -> list[str]:
        return self.log_path.read_text(encoding="utf-8").splitlines() if self.log_path else []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_service(
    name: str, database_url: str, workdir: Path, extra_env: dict[str, str] | None = None, *, port: int | None = None
) -> RunningService:
    """Start `<name> serve` (migrations first) on a port (a free one by default); wait until /readyz says ready."""
    port = port or free_port()
    log_path = workdir / f"{name}-{port}.log"
    env = {
        **os.environ,
        "CRM_ENV": "test",
        "DATABASE_URL": database_url,
        "CRM_DATA_DIR": str(workdir),
        "CRM_DEV_API_KEY": DEV_KEY,
        **(extra_env or {}),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(BIN / name), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    service = RunningService(name, f"http://127.0.0.1:{port}", DEV_KEY, process, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{service.base_url}/readyz", timeout=1).status_code == 200:
                return service
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    stop_service(service)
    raise RuntimeError(f"{name} was not ready in 60 s:\n{log_path.read_text()}")


def stop_service(service: RunningService) -> int | None:
    if service.process is None:
        return None
    if service.process.poll() is None:
        service.process.send_signal(signal.SIGTERM)
        try:
            service.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            service.process.kill()
            service.process.wait()
    return service.process.returncode


@pytest.fixture(scope="session")
def backend_of() -> dict[str, str]:
    """The backend each locally started service runs on in this part of the session."""
    return {}


@pytest.fixture(scope="session", params=BACKENDS)
async def customer_api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, backend_of: dict[str, str]
) -> AsyncIterator[RunningService]:
    backend_of["customer-api"] = request.param
    if url := os.environ.get("CUSTOMER_API_URL"):
        if request.param != BACKENDS[0]:
            pytest.skip("an external stack runs on one backend")
        yield RunningService("customer-api", url.rstrip("/"), os.environ.get("CRM_TEST_API_KEY", DEV_KEY))
        return
    workdir = tmp_path_factory.mktemp(f"customer-api-{request.param}")
    async with temporary_database(request.param, "stack_customer_api", workdir) as database_url:
        service = start_service("customer-api", database_url, workdir)
        service.database_url = database_url
        try:
            yield service
        finally:
            stop_service(service)


def recommend_env(customer_api: RunningService, **overrides: str) -> dict[str, str]:
    """recommend-api's settings for a test stack: quick sync and model polling, builds on request."""
    return {
        "RECOMMEND_API_CUSTOMER_API_URL": customer_api.base_url,
        "RECOMMEND_API_CUSTOMER_API_KEY": customer_api.api_key,
        "RECOMMEND_API_SYNC_SECONDS": "0.5",
        "RECOMMEND_API_MODEL_POLL_SECONDS": "0.2",
        "RECOMMEND_API_REBUILD_MINUTES": "0",
        **overrides,
    }


@pytest.fixture(scope="session")
async def recommend_api(
    customer_api: RunningService, backend_of: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningService]:
    if url := os.environ.get("RECOMMEND_API_URL"):
        yield RunningService("recommend-api", url.rstrip("/"), os.environ.get("CRM_TEST_API_KEY", DEV_KEY))
        return
    backend = backend_of["customer-api"]
    workdir = tmp_path_factory.mktemp(f"recommend-api-{backend}")
    async with temporary_database(backend, "stack_recommend_api", workdir) as database_url:
        service = start_service("recommend-api", database_url, workdir, recommend_env(customer_api))
        service.database_url = database_url
        try:
            yield service
        finally:
            stop_service(service)


def complaint_env(customer_api: RunningService, recommend_api: RunningService, **overrides: str) -> dict[str, str]:
    """complaint-api's settings for a test stack: its peers and a quick background sweep."""
    return {
        "COMPLAINT_API_CUSTOMER_API_URL": customer_api.base_url,
        "COMPLAINT_API_RECOMMEND_API_URL": recommend_api.base_url,
        "COMPLAINT_API_SWEEP_SECONDS": "0.3",
        **overrides,
    }


@pytest.fixture(scope="session")
async def complaint_api(
    customer_api: RunningService,
    recommend_api: RunningService,
    backend_of: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningService]:
    if url := os.environ.get("COMPLAINT_API_URL"):
        yield RunningService("complaint-api", url.rstrip("/"), os.environ.get("CRM_TEST_API_KEY", DEV_KEY))
        return
    backend = backend_of["customer-api"]
    workdir = tmp_path_factory.mktemp(f"complaint-api-{backend}")
    async with temporary_database(backend, "stack_complaint_api", workdir) as database_url:
        service = start_service("complaint-api", database_url, workdir, complaint_env(customer_api, recommend_api))
        service.database_url = database_url
        try:
            yield service
        finally:
            stop_service(service)


def wait_for(check: Callable[[], Any], what: str, seconds: float = 90) -> Any:
    """Poll `check` until it returns something true, and return that; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def purchase_feed(customers: httpx.Client) -> list[dict[str, Any]]:
    """customer-api's whole purchase feed, read to its end."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 1000}
    while True:
        page = customers.get("/v1/feeds/purchases", params=params).json()
        items += page["items"]
        params["after"] = page["next_cursor"]
        if not page["has_more"]:
            return items


def client_for(service: RunningService) -> httpx.Client:
    return httpx.Client(base_url=service.base_url, headers={"Authorization": f"Bearer {service.api_key}"}, timeout=30)


@pytest.fixture
def complaints(complaint_api: RunningService) -> Iterator[httpx.Client]:
    with client_for(complaint_api) as client:
        yield client


@pytest.fixture
def recommendations(recommend_api: RunningService) -> Iterator[httpx.Client]:
    with client_for(recommend_api) as client:
        yield client


@pytest.fixture
def customers(customer_api: RunningService) -> Iterator[httpx.Client]:
    with client_for(customer_api) as client:
        yield client
