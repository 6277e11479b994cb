"""The authorization matrix: every operation of every service, read from its own OpenAPI, called with no
key (401), with a key that lacks the operation's scope (403), and with a key holding exactly that scope
(neither). The services run as processes with hashed keys configured as in production."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import RunningService, free_port, start_service, stop_service

from crm_kit.settings import hash_api_key

SERVICES = ("customer-api", "complaint-api", "recommend-api")
OUTSIDER = "outsider-key-000000000001"
PUBLIC = {"/healthz", "/readyz", "/metrics"}


def _scope_sets(spec: dict[str, Any]) -> set[tuple[str, ...]]:
    """Each distinct set of scopes an operation requires."""
    return {tuple(sorted(op["x-required-scopes"])) for ops in spec["paths"].values() for op in ops.values()
            if op.get("x-required-scopes")}  # fmt: skip


def _key(scopes: tuple[str, ...]) -> str:
    return "key-for-" + "+".join(s.replace(":", "-") for s in scopes)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[RunningService, dict[str, Any]]]]:
    """The three services on SQLite with one key per scope found in their OpenAPI, and an outsider key."""
    workdir = tmp_path_factory.mktemp("authz")
    ports = {name: free_port() for name in SERVICES}
    started: dict[str, tuple[RunningService, dict[str, Any]]] = {}
    try:
        for name in SERVICES:
            # Read the operations and scopes from the service's own schema, then start it with those keys.
            probe = start_service(name, f"sqlite+aiosqlite:///{workdir / name}.db", workdir)
            spec = httpx.get(f"{probe.base_url}/openapi.json", timeout=30).json()
            stop_service(probe)
            keys = [{"name": "outsider", "sha256": hash_api_key(OUTSIDER), "scopes": ["nothing:granted"]}]
            keys += [
                {"name": _key(scopes), "sha256": hash_api_key(_key(scopes)), "scopes": list(scopes)}
                for scopes in sorted(_scope_sets(spec))
            ]
            env = {
                "CRM_API_KEYS": json.dumps(keys),
                "CRM_DEV_API_KEY": "",
                "COMPLAINT_API_CUSTOMER_API_URL": f"http://127.0.0.1:{ports['customer-api']}",
                "COMPLAINT_API_RECOMMEND_API_URL": f"http://127.0.0.1:{ports['recommend-api']}",
                "RECOMMEND_API_CUSTOMER_API_URL": f"http://127.0.0.1:{ports['customer-api']}",
            }
            service = start_service(name, f"sqlite+aiosqlite:///{workdir / name}.db", workdir, env, port=ports[name])
            started[name] = (service, spec)
        yield started
    finally:
        for service, _ in started.values():
            stop_service(service)


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m.upper(), p, op) for p, ops in spec["paths"].items() for m, op in ops.items() if p not in PUBLIC]


def _url(path: str, op: dict[str, Any]) -> str:
    for parameter in op.get("parameters", []):
        if parameter["in"] != "path":
            continue
        schema = parameter.get("schema", {})
        value = str(uuid.uuid4()) if schema.get("format") == "uuid" else "1" if schema.get("type") == "integer" else "X"
        path = path.replace("{" + parameter["name"] + "}", value)
    return path


def _call(base_url: str, method: str, path: str, op: dict[str, Any], key: str | None) -> int:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = {} if "requestBody" in op else None
    response = httpx.request(method, base_url + _url(path, op), json=body, headers=headers, timeout=30)
    return response.status_code


@pytest.mark.parametrize("name", SERVICES)
def test_every_operation_needs_a_key_and_its_scope(
    stack: dict[str, tuple[RunningService, dict[str, Any]]], name: str, tmp_path: Path
) -> None:
    service, spec = stack[name]
    operations = _operations(spec)
    assert operations
    wrong = []
    for method, path, op in operations:
        scopes = op.get("x-required-scopes")
        if not scopes:
            wrong.append((method, path, "no scope documented"))
            continue
        outcomes = {
            "no key": _call(service.base_url, method, path, op, None),
            "outsider": _call(service.base_url, method, path, op, OUTSIDER),
            "its scope": _call(service.base_url, method, path, op, _key(tuple(sorted(scopes)))),
        }
        if outcomes["no key"] != 401 or outcomes["outsider"] != 403 or outcomes["its scope"] in (401, 403, 500):
            wrong.append((method, path, outcomes))
    assert not wrong, wrong
