"""The published contract: each service's live `/openapi.json` documents every operation, and a client generated
from it with openapi-python-client (pinned in requirements-dev.txt) drives the running service.

The generator runs as `openapi-python-client generate --path <spec> --output-path <dir>/<package> --meta none
--fail-on-warning --config <dir>/config.yaml`, the config holding `post_hooks: []` (its default hooks run ruff
from PATH, which only formats the generated code). It needed nothing else from our specs: FastAPI's generic
`Page_CustomerRead_` names, `dict[str, Any]` members and the examples generate cleanly. `--fail-on-warning` keeps
it that way: a construct the generator has to skip fails here instead of quietly leaving a hole in the client.
"""

from __future__ import annotations

import hashlib
import importlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from http import HTTPStatus
from types import ModuleType
from typing import Any

import httpx
import pytest
from conftest import BIN, RunningService

METHODS = ("get", "put", "post", "delete", "patch")
PUBLIC = {"/healthz", "/readyz", "/metrics"}


def _spec(service: RunningService) -> dict[str, Any]:
    response = httpx.get(f"{service.base_url}/openapi.json", timeout=30)
    assert response.status_code == 200, response.text
    spec: dict[str, Any] = response.json()
    return spec


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                yield f"{method.upper()} {path}", item[method]


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Follow `$ref`s, and take the non-null side of an optional body (`anyOf: [X, null]`)."""
    while True:
        if "$ref" in schema:
            schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        elif "anyOf" in schema and "example" not in schema and "examples" not in schema:
            schema = next(s for s in schema["anyOf"] if s.get("type") != "null")
        else:
            return schema


def _has_example(spec: dict[str, Any], media: dict[str, Any], *, list_items: bool = False) -> bool:
    """An example on the media type or on the (resolved) schema.

    With `list_items`, a list wrapper (`Page[T]`, `FeedPage[T]`: `items` plus a cursor) may show its item model's
    example instead: the wrappers are the kit's generic pages, shared by every list, so only the item model can
    show what a list holds; the page shape itself is stated in each service's description.
    """
    if "example" in media or "examples" in media:
        return True
    schema = _resolve(spec, media.get("schema", {}))
    if "example" in schema or "examples" in schema:
        return True
    items = schema.get("properties", {}).get("items", {})
    if list_items and items.get("type") == "array":
        item = _resolve(spec, items["items"])
        return "example" in item or "examples" in item
    return False


def _documents_a_problem(spec: dict[str, Any], response: dict[str, Any]) -> bool:
    content = response.get("content", {})
    return "application/problem+json" in content or any(
        _resolve(spec, media.get("schema", {})).get("title") == "Problem" for media in content.values()
    )


def _gaps(spec: dict[str, Any]) -> list[str]:
    gaps = []
    for name, op in _operations(spec):
        public = name.split(" ", 1)[1] in PUBLIC
        description = op.get("description", "")
        responses = op.get("responses", {})
        if not op.get("summary"):
            gaps.append(f"{name}: no summary")
        if not description:
            gaps.append(f"{name}: no description")
        if not any(code.startswith("2") for code in responses):
            gaps.append(f"{name}: no 2xx response")
        if public:
            if "Public" not in description:
                gaps.append(f"{name}: does not say it is public")
        else:
            if not any(code.startswith("4") and _documents_a_problem(spec, r) for code, r in responses.items()):
                gaps.append(f"{name}: no documented 4xx problem")
            if not op.get("x-required-scopes"):
                gaps.append(f"{name}: no x-required-scopes")
            elif "Requires the scope" not in description:
                gaps.append(f"{name}: the description does not name the scope")
            if not op.get("security"):
                gaps.append(f"{name}: no security requirement")
        for media_type, media in op.get("requestBody", {}).get("content", {}).items():
            if not _has_example(spec, media):
                gaps.append(f"{name}: no example of the {media_type} request body")
        for code, response in responses.items():
            for media_type, media in response.get("content", {}).items():
                json_success = code.startswith("2") and media_type == "application/json"
                if json_success and not _has_example(spec, media, list_items=True):
                    gaps.append(f"{name}: no example of the {code} response")
    return gaps


def test_every_operation_is_documented(
    customer_api: RunningService, complaint_api: RunningService, recommend_api: RunningService
) -> None:
    for service in (customer_api, complaint_api, recommend_api):
        spec = _spec(service)
        assert "HTTPBearer" in spec["components"]["securitySchemes"]
        gaps = _gaps(spec)
        assert not gaps, f"{service.name}:\n" + "\n".join(gaps)


def test_scopes_come_from_the_routes_checks(customer_api: RunningService) -> None:
    operations = dict(_operations(_spec(customer_api)))
    assert operations["POST /v1/customers"]["x-required-scopes"] == ["customers:write"]
    assert operations["GET /v1/customers/{customer_id}/export"]["x-required-scopes"] == ["customers:pii"]
    assert operations["DELETE /v1/customers/{customer_id}"]["description"].endswith(
        "Requires the scope `customers:erase` (or `admin`)."
    )
    assert "x-required-scopes" not in operations["GET /healthz"]


def _generated_client(service: RunningService, tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The client package generated from the service's live spec; one per distinct spec in the session."""
    spec = httpx.get(f"{service.base_url}/openapi.json", timeout=30).text
    package = f"{service.name.replace('-', '_')}_client_{hashlib.sha256(spec.encode()).hexdigest()[:10]}"
    if package not in sys.modules:
        workdir = tmp_path_factory.mktemp(package)
        (workdir / "openapi.json").write_text(spec, encoding="utf-8")
        (workdir / "config.yaml").write_text("post_hooks: []\n", encoding="utf-8")
        generate = subprocess.run(
            [str(BIN / "openapi-python-client"), "generate", "--path", str(workdir / "openapi.json"),
             "--output-path", str(workdir / package), "--meta", "none", "--fail-on-warning",
             "--config", str(workdir / "config.yaml")],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert generate.returncode == 0, generate.stdout + generate.stderr
        sys.path.insert(0, str(workdir))
    return importlib.import_module(package)


def _client(package: ModuleType, service: RunningService) -> Any:
    return package.AuthenticatedClient(
        base_url=service.base_url, token=service.api_key, raise_on_unexpected_status=True, timeout=httpx.Timeout(30)
    )


def _operation(package: ModuleType, tag: str, operation_id: str) -> Any:
    return importlib.import_module(f"{package.__name__}.api.{tag}.{operation_id}")


def test_a_generated_client_registers_and_reads_a_customer(
    customer_api: RunningService, tmp_path_factory: pytest.TempPathFactory
) -> None:
    package = _generated_client(customer_api, tmp_path_factory)
    models = importlib.import_module(f"{package.__name__}.models")
    create = _operation(package, "customers", "create_customer_v1_customers_post")
    read = _operation(package, "customers", "read_customer_v1_customers_customer_id_get")
    with _client(package, customer_api) as client:
        body = models.CustomerCreate(
            name="王芳", tags=["乳品", "粮油"], address=models.Address(province="上海市", city="上海市")
        )
        created = create.sync_detailed(client=client, body=body, idempotency_key=str(uuid.uuid4()))
        assert created.status_code == HTTPStatus.CREATED
        customer = created.parsed
        assert isinstance(customer, models.CustomerRead)
        assert isinstance(customer.id, uuid.UUID)
        assert (customer.name, customer.tags, customer.version) == ("王芳", ["乳品", "粮油"], 1)

        again = read.sync(client=client, customer_id=customer.id)
        assert isinstance(again, models.CustomerRead)
        assert (again.id, again.name) == (customer.id, "王芳")


def test_a_generated_client_writes_and_finds_a_knowledge_base_article(
    complaint_api: RunningService, tmp_path_factory: pytest.TempPathFactory
) -> None:
    package = _generated_client(complaint_api, tmp_path_factory)
    models = importlib.import_module(f"{package.__name__}.models")
    create = _operation(package, "knowledge_base", "create_article_v1_kb_articles_post")
    search = _operation(package, "knowledge_base", "search_v1_kb_search_get")
    slug = f"fresh-dairy-returns-{uuid.uuid4().hex[:8]}"
    with _client(package, complaint_api) as client:
        body = models.ArticleCreate(
            slug=slug,
            title="冷藏乳品退货规则",
            body="冷藏乳品不适用7天无理由退货；如有胀袋、变质等质量问题，凭购物小票在保质期内到服务台办理退货退款。",
            category="returns",
            tags=["乳品", "退货"],
        )
        article = create.sync(client=client, body=body, idempotency_key=str(uuid.uuid4()))
        assert isinstance(article, models.ArticleRead)
        assert (article.slug, article.title) == (slug, "冷藏乳品退货规则")

        # Traditional characters find the simplified article.
        found = search.sync(client=client, q="冷藏乳品退貨", limit=50)
        assert isinstance(found, models.SearchResults)
        assert slug in [hit.slug for hit in found.items]
        assert all(isinstance(hit, models.SearchHit) and hit.score > 0 for hit in found.items)


def test_a_generated_client_reads_the_sync_status(
    recommend_api: RunningService, tmp_path_factory: pytest.TempPathFactory
) -> None:
    package = _generated_client(recommend_api, tmp_path_factory)
    models = importlib.import_module(f"{package.__name__}.models")
    status_of = _operation(package, "sync", "sync_status_v1_sync_status_get")
    with _client(package, recommend_api) as client:
        status = status_of.sync(client=client)
    assert isinstance(status, models.SyncStatusRead)
    assert (status.purchases.feed, status.customers.feed) == ("customer-api:purchases", "customer-api:customers")
    assert status.lines >= 0 and status.customers_with_history >= 0
