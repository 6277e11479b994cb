"""customer-api as a real process: the archive over HTTP, its logs, its shutdown."""

from __future__ import annotations

import json
import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest
from conftest import RunningService, client_for, start_service, stop_service, wait_for


def _phone() -> str:
    return "139" + str(uuid.uuid4().int)[:8]


def test_register_buy_and_follow_the_feed(customers: httpx.Client) -> None:
    created = customers.post("/v1/customers", json={"name": "赵敏", "phone": _phone(), "owner_id": "staff-3"})
    assert created.status_code == 201, created.text
    customer_id = created.json()["id"]
    start = customers.get("/v1/feeds/purchases", params={"limit": 1000})
    cursor = start.json()["next_cursor"]
    while start.json()["has_more"]:
        start = customers.get("/v1/feeds/purchases", params={"after": cursor, "limit": 1000})
        cursor = start.json()["next_cursor"]

    prefix = uuid.uuid4().hex[:8]
    orders = [
        {
            "order_id": f"{prefix}-{i}",
            "customer_id": customer_id,
            "purchased_at": f"2026-10-{i + 1:02d}T12:00:00+08:00",
            "items": [{"sku": f"SKU-{i}", "name": "商品", "category": "日用", "quantity": "1", "unit_price": "9.90"}],
        }
        for i in range(20)
    ]
    bulk = customers.post("/v1/purchases/bulk", json={"purchases": orders})
    assert bulk.status_code == 200 and bulk.json()["created"] == 20
    assert customers.post("/v1/purchases/bulk", json={"purchases": orders}).json()["existing"] == 20

    feed = customers.get("/v1/feeds/purchases", params={"after": cursor}).json()
    assert [p["order_id"] for p in feed["items"]] == [o["order_id"] for o in orders]
    history = customers.get(f"/v1/customers/{customer_id}/purchases", params={"limit": 5}).json()
    assert history["items"][0]["order_id"] == f"{prefix}-19" and history["next_cursor"]


def test_one_json_log_line_per_request_with_the_request_id(
    customer_api: RunningService, customers: httpx.Client
) -> None:
    if customer_api.process is None:
        pytest.skip("the logs of an external stack are not readable from here")
    request_id = f"trace-{uuid.uuid4().hex[:12]}"
    response = customers.get("/v1/customers", params={"q": "不存在"}, headers={"X-Request-ID": request_id})
    assert response.headers["x-request-id"] == request_id
    # The access line is written once the response has gone out; give the server a moment.
    deadline = time.monotonic() + 5
    while not (lines := [json.loads(line) for line in customer_api.log_lines() if request_id in line]):
        assert time.monotonic() < deadline, "no log line for the request"
        time.sleep(0.05)
    assert len(lines) == 1
    line = lines[0]
    assert line["method"] == "GET" and line["path"] == "/v1/customers" and line["status"] == 200
    assert line["route"] == "/v1/customers" and line["duration_ms"] >= 0 and line["service"] == "customer-api"
    assert line["level"] == "info" and line["message"] == "request" and line["timestamp"].endswith("Z")


def test_sigterm_stops_the_service_cleanly(tmp_path: object) -> None:
    service = start_service("customer-api", f"sqlite+aiosqlite:///{tmp_path}/stop.db", tmp_path)  # type: ignore[operator]
    assert httpx.get(f"{service.base_url}/healthz").status_code == 200
    # uvicorn finishes the graceful shutdown, then re-raises SIGTERM to report how it was stopped.
    assert stop_service(service) in (0, -signal.SIGTERM)
    log = [json.loads(line) for line in service.log_lines()]
    assert "Application shutdown complete." in [entry.get("event") or entry.get("message") for entry in log]
    assert "Traceback" not in str(log)


def test_production_refuses_to_start_with_the_dev_key(tmp_path: object) -> None:
    with pytest.raises(RuntimeError, match="refusing to start in production"):
        start_service(
            "customer-api",
            f"sqlite+aiosqlite:///{tmp_path}/prod.db",
            tmp_path,  # type: ignore[arg-type]
            {"CRM_ENV": "production"},
        )


def test_a_second_replica_reads_the_first_ones_writes(
    customer_api: RunningService, customers: httpx.Client, backend_of: dict[str, str], tmp_path: Path
) -> None:
    """Each replica answers profile reads from its cache; a write on one shows on the other within moments."""
    if backend_of["customer-api"] != "postgresql" or customer_api.database_url is None:
        pytest.skip("replicas share a PostgreSQL database")
    other = start_service("customer-api", customer_api.database_url, tmp_path)
    try:
        with client_for(other) as replica:
            created = customers.post("/v1/customers", json={"name": "周杰", "phone": _phone()}).json()
            url = f"/v1/customers/{created['id']}"
            for round_ in range(5):
                assert replica.get(url).json() == customers.get(url).json()  # both cached now
                changed = customers.patch(url, json={"name": f"周杰{round_}"})
                assert changed.status_code == 200
                expected = changed.json()
                wait_for(lambda e=expected: replica.get(url).json() == e, "the replica saw the change", 10)
            assert customers.delete(url).status_code == 204
            wait_for(lambda: replica.get(url).status_code == 410, "the replica saw the erasure", 10)
            hits = [line for line in replica.get("/metrics").text.splitlines() if line.startswith("profile_cache_hits")]
            assert hits and float(hits[0].split()[-1]) > 0
    finally:
        stop_service(other)
