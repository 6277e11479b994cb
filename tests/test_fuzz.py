"""API fuzzing with schemathesis against each service's live OpenAPI schema, every operation, with a valid
key: its examples, boundary and type-mismatch cases (the coverage phase) and generated ones. No 5xx, every
status code documented, every response matching its documented schema, headers and media type (so bad input is
always the documented problem+json), no request that breaks the schema accepted (schemathesis.toml), and no
operation answering without a valid key or with a made-up one (ignored_auth). Each service runs as its own
process on a throw-away database, SQLite and then PostgreSQL, so the generated calls (erasures, merges,
webhooks …) touch nothing other tests use. The examples per operation are bounded (`CRM_FUZZ_EXAMPLES`,
default 30) and seeded, so CI stays quick and a failure can be replayed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import schemathesis
from conftest import DEV_KEY, RunningService, client_for, free_port, start_service, stop_service, wait_for
from hypothesis import HealthCheck, given, settings

from crm_kit.testing import BACKENDS, temporary_database

SERVICES = ("customer-api", "complaint-api", "recommend-api")
EXAMPLES = os.environ.get("CRM_FUZZ_EXAMPLES", "30")
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
    "response_headers_conformance,negative_data_rejection,ignored_auth"
)
CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.fixture(scope="module", params=BACKENDS)
async def services(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, RunningService]]:
    """The three services on one backend: PostgreSQL refuses what SQLite stores (text holding U+0000 was a 503
    there only), so the generated calls meet both."""
    workdir = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    ports = {name: free_port() for name in SERVICES}
    peers = {
        "COMPLAINT_API_CUSTOMER_API_URL": f"http://127.0.0.1:{ports['customer-api']}",
        "COMPLAINT_API_RECOMMEND_API_URL": f"http://127.0.0.1:{ports['recommend-api']}",
        "RECOMMEND_API_CUSTOMER_API_URL": f"http://127.0.0.1:{ports['customer-api']}",
    }
    started: dict[str, RunningService] = {}
    async with AsyncExitStack() as databases:
        try:
            for name in SERVICES:
                prefix = "fuzz_" + name.replace("-", "_")
                database = await databases.enter_async_context(temporary_database(request.param, prefix, workdir))
                started[name] = start_service(name, database, workdir, peers, port=ports[name])
            _serve_a_model(started["customer-api"], started["recommend-api"])
            yield started
        finally:
            for service in started.values():
                stop_service(service)


def _serve_a_model(customer_api: RunningService, recommend_api: RunningService) -> None:
    """A few shoppers' baskets synced and a model built, so recommend-api's operations are fuzzed against a
    served model (before the first build they answer a documented 503, which the no-5xx check would flag)."""
    with client_for(customer_api) as customers, client_for(recommend_api) as recommendations:
        people = [customers.post("/v1/customers", json={"name": f"顾客{i}"}).json()["id"] for i in range(4)]
        orders = [
            {"order_id": f"fuzz-{i}", "customer_id": people[i % 4], "purchased_at": f"2026-10-{i + 1:02d}T10:00:00Z",
             "items": [{"sku": sku, "name": "商品", "category": "日用", "quantity": "1", "unit_price": "9.90"}
                       for sku in ("6901234567890", "6909876543210", "6900000000001")[: i % 3 + 1]]}
            for i in range(24)
        ]  # fmt: skip
        assert customers.post("/v1/purchases/bulk", json={"purchases": orders}).status_code == 200
        assert recommendations.post("/v1/sync").status_code == 200
        version = recommendations.post("/v1/models", json={"evaluate": False}).json()["version"]
        wait_for(
            lambda: recommendations.get("/v1/models/current").json().get("version", 0) >= version, "a served model", 60
        )


@pytest.mark.parametrize("name", SERVICES)
def test_every_operation_holds_up_under_generated_input(
    services: dict[str, RunningService], name: str, tmp_path: Path
) -> None:
    service = services[name]
    command = [
        str(Path(sys.executable).parent / "schemathesis"), "--config-file", str(CONFIG), "run",
        f"{service.base_url}/openapi.json",
        "--header", f"Authorization: Bearer {DEV_KEY}", "--max-examples", EXAMPLES, "--seed", "20261123",
        "--phases", "examples,coverage,fuzzing", "--checks", CHECKS, "--exclude-path", "/metrics",
        "--request-timeout", "30", "--no-color",
    ]  # fmt: skip
    budget = 900 + 2 * int(EXAMPLES)  # seconds: complaint-api took 22 min at 1,000 examples per operation
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=budget, check=False)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]


#: The rules a request must also meet that its schema cannot state, as the field and message of their 422s.
#: Every other rule is in the schema, so a request the schema allows is never refused as invalid.
RULES_BEYOND_THE_SCHEMA = {
    "customer-api": (
        r"body: Value error, 'from' must be before 'to'",  # one field against another's value
        r"body.purchased_at: .* is in the future",  # against the clock
        r"body.as_of: .* cannot be in the future",
        r"body.birthday: .* between 1900-01-01 and today",
        r"body.(email|phone): ",  # email-validator and phonenumbers decide
    ),
    "complaint-api": (
        r"body.phone: ",
        r"body.url: ",  # phonenumbers and the URL parser decide
        r"body.redeemed_at: .* cannot be in the future",  # against the clock
    ),
    "recommend-api": (),
}
#: Rules of every service: text is trimmed, so whitespace alone is empty (the schema's minLength counts it),
#: and text may not hold U+0000, which PostgreSQL cannot store.
EVERYWHERE = (r"[^:]+: String should have at least 1 character", r"(body|query|path): text may not contain the NUL")


@pytest.mark.parametrize("name", SERVICES)
def test_a_request_the_schema_allows_is_never_refused_as_invalid(
    services: dict[str, RunningService], name: str
) -> None:
    """The other direction of negative_data_rejection: every query and body generated from the schema passes
    validation (it may still be a 404, 409 or 412 for the state it meets). Each call carries a new
    Idempotency-Key, since a key reused with another body is rightly refused."""
    service = services[name]
    schema = schemathesis.openapi.from_url(f"{service.base_url}/openapi.json")
    allowed = re.compile("|".join((*RULES_BEYOND_THE_SCHEMA[name], *EVERYWHERE)))
    refused: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/metrics":
            continue

        @settings(
            max_examples=int(EXAMPLES), derandomize=True, database=None, deadline=None,
            suppress_health_check=list(HealthCheck),
        )  # fmt: skip
        @given(operation.as_strategy())
        def call(case: schemathesis.Case) -> None:
            headers = {"Authorization": f"Bearer {DEV_KEY}", "Idempotency-Key": str(uuid.uuid4())}
            response = case.call(base_url=service.base_url, headers=headers)
            problem = response.json() if response.status_code == 422 else {}
            for error in problem.get("errors", []) if problem.get("type", "").endswith("/validation") else []:
                if not allowed.match(f"{error['field']}: {error['message']}"):
                    refused.append(f"{case.method} {case.path} {error}: {case.body!r:.300} {case.query}")

        call()
    assert not refused, "\n".join(refused[:20])
