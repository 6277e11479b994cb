"""`build_app()`: the FastAPI application every service starts from.

It wires what all three share — the database, API keys, cursor signing, error handlers, the
request middleware, health and metrics — and leaves routers and background work to the service.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.middleware import Middleware

from crm_kit.auth import ADMIN_SCOPE, KeyRing, required_scope
from crm_kit.db import Database
from crm_kit.errors import install_error_handlers
from crm_kit.health import health_router, migration_heads
from crm_kit.limits import RateLimitMiddleware
from crm_kit.observability import Metrics, RequestContextMiddleware, configure_logging
from crm_kit.pagination import CursorCodec
from crm_kit.settings import ServiceSettings

ServiceLifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def _freeze_startup_objects() -> None:
    """Move what startup built (app, models, dictionaries) out of the collector's reach: full collections
    otherwise walk it all and pause every request for tens of milliseconds."""
    gc.collect()
    gc.freeze()


def _scopes_of(dependant: Dependant) -> list[str]:
    """The scopes the `require(...)` dependencies anywhere under `dependant` check, in order, once each."""
    scopes: list[str] = []
    for dependency in dependant.dependencies:
        scope = required_scope(dependency.call)
        found = [scope] if scope else _scopes_of(dependency)
        scopes.extend(s for s in found if s not in scopes)
    return scopes


def _scope_sentence(scopes: list[str]) -> str:
    if scopes == [ADMIN_SCOPE]:
        return f"Requires the scope `{ADMIN_SCOPE}`."
    if len(scopes) == 1:
        return f"Requires the scope `{scopes[0]}` (or `{ADMIN_SCOPE}`)."
    named = " and ".join(f"`{s}`" for s in scopes)
    return f"Requires the scopes {named} (or `{ADMIN_SCOPE}`)."


def document_scopes(app: FastAPI) -> None:
    """Make `app.openapi()` state each operation's scopes, read from its `require(...)` dependencies.

    Each guarded operation gets `x-required-scopes`, a closing sentence in its description and the bearer
    security requirement, so the published contract cannot drift from the checks the routes make. An
    operation with a body also documents the 400 problem a body that is not JSON at all gets.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()  # cached by FastAPI until the routes change; the edits below are idempotent
        schemes = schema.get("components", {}).get("securitySchemes", {})
        for route in iter_route_contexts(app.routes):
            if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
                continue
            scopes = _scopes_of(route.dependant)
            operations = schema["paths"].get(route.path_format, {})
            for method in route.methods or ():
                operation = operations.get(method.lower())
                if operation is not None and "requestBody" in operation:
                    _document_malformed_body(operation)
                if not scopes or operation is None:
                    continue
                operation["x-required-scopes"] = scopes
                sentence = _scope_sentence(scopes)
                description = operation.get("description", "").rstrip()
                if not description.endswith(sentence):
                    operation["description"] = f"{description}\n\n{sentence}" if description else sentence
                if "security" not in operation and schemes:
                    operation["security"] = [{name: []} for name in schemes]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document_malformed_body(operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    if "400" in responses or "422" not in responses:
        return
    responses["400"] = {"description": "The body is not valid JSON", "content": responses["422"].get("content", {})}


def build_app(
    settings: ServiceSettings,
    *,
    title: str,
    version: str,
    description: str,
    routers: Sequence[APIRouter],
    alembic_ini: Path,
    lifespan: ServiceLifespan | None = None,
    openapi_tags: list[dict[str, str]] | None = None,
    middleware: Sequence[Middleware] = (),
) -> FastAPI:
    """The service's app. `middleware` runs innermost, in order: after the request context (ids, logs,
    metrics, size and rate limits) has been set up, before FastAPI routes the request."""
    configure_logging(settings.service_name, settings.log_level)

    @asynccontextmanager
    async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = Database(
            settings.resolved_database_url,
            pool_size=settings.db_pool_size,
            connect_timeout=settings.db_connect_timeout,
            statement_timeout=settings.db_statement_timeout,
        )
        app.state.database = database
        try:
            if lifespan is None:
                _freeze_startup_objects()
                yield
            else:
                async with lifespan(app):
                    _freeze_startup_objects()
                    yield
        finally:
            await database.dispose()

    app = FastAPI(
        title=title,
        version=version,
        description=description,
        lifespan=_lifespan,
        openapi_tags=openapi_tags,
        # Metrics are Prometheus's and logs structlog's (below); FastAPI's OpenTelemetry hooks would only
        # look up unconfigured providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.keyring = KeyRing(settings)
    app.state.cursor_codec = CursorCodec(settings.signing_key)
    app.state.metrics = Metrics(settings.service_name)
    app.state.migration_heads = migration_heads(alembic_ini)
    install_error_handlers(app)
    for layer in reversed(middleware):
        app.add_middleware(layer.cls, *layer.args, **layer.kwargs)
    if settings.rate_limit_per_minute > 0:
        # Added first, so it runs inside the request context: a refused call is logged and counted too.
        app.add_middleware(
            RateLimitMiddleware,
            per_minute=settings.rate_limit_per_minute,
            burst=settings.rate_limit_burst,
            keyring=app.state.keyring,
        )
    app.add_middleware(
        RequestContextMiddleware,
        metrics=app.state.metrics,
        access_log=settings.access_log,
        max_body_bytes=settings.max_body_bytes,
    )
    app.include_router(health_router())
    for router in routers:
        app.include_router(router)
    document_scopes(app)
    return app
