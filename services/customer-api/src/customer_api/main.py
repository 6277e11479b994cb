"""Builds the customer-api application."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.middleware import Middleware

from crm_kit.app import build_app
from customer_api.analytics.jobs import refresh_worker
from customer_api.analytics.router import router as analytics_router
from customer_api.config import Settings
from customer_api.customers.cache import ProfileCache, ProfileReads, listening
from customer_api.customers.router import feed_router
from customer_api.customers.router import router as customers_router
from customer_api.customers.service import CustomerMoved
from customer_api.interactions.router import router as interactions_router
from customer_api.purchases.router import router as purchases_router

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"

DESCRIPTION = """
The customer archive (客户档案) of the retail CRM: one profile per person or organisation, shared by every
department — membership cards, purchases with line items, contact history, consent and PIPL rights.

Authenticate with `Authorization: Bearer <api-key>`. Errors are `application/problem+json` (RFC 9457).
Lists page with `limit` and `cursor`; feeds with `after`. Creates accept `Idempotency-Key`; updates take
`If-Match`.
"""


async def _moved(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CustomerMoved)
    return JSONResponse(
        {"id": str(exc.customer_id), "status": "merged", "merged_into": str(exc.merged_into)},
        status_code=308,
        headers={"Location": _survivor_location(request, exc)},
    )


def _survivor_location(request: Request, moved: CustomerMoved) -> str:
    """The same resource of the surviving profile: a read of a merged id's purchases, contact history, value or
    export leads to the survivor's, not to its profile. Writes (a PATCH, a merge) lead to the surviving profile:
    repeated there, a merge would fold the survivor, a whole other profile, into the target."""
    profile = f"/v1/customers/{moved.merged_into}"
    route = request.scope.get("route")
    if request.method not in ("GET", "HEAD") or not isinstance(route, APIRoute):
        return profile
    params = dict(request.path_params)
    try:
        named = uuid.UUID(params.get("customer_id", ""))
    except ValueError:
        return profile
    if named != moved.customer_id:
        return profile
    location = route.path_format.format(**{**params, "customer_id": moved.merged_into})
    return f"{location}?{request.url.query}" if request.url.query else location


@asynccontextmanager
async def _background(app: FastAPI) -> AsyncIterator[None]:
    async with refresh_worker(app), listening(app):
        yield


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    cache = ProfileCache(settings.profile_cache_size)
    app = build_app(
        settings,
        title="customer-api",
        version="0.1.0",
        description=DESCRIPTION,
        routers=[customers_router, purchases_router, interactions_router, analytics_router, feed_router],
        alembic_ini=ALEMBIC_INI,
        lifespan=_background,
        openapi_tags=[
            {"name": "customers", "description": "Profiles, merges, reassignment, PIPL export and erasure"},
            {"name": "purchases", "description": "Orders with line items"},
            {"name": "interactions", "description": "Contact history (客户接触记录)"},
            {"name": "analytics", "description": "Customer value: RFM, tiers, CLV, churn risk"},
            {"name": "feeds", "description": "Ordered change feeds for peer services"},
            {"name": "health", "description": "Liveness, readiness, metrics"},
        ],
        middleware=[Middleware(ProfileReads, cache=cache, scope="customers:read", pii_scope="customers:pii")],
    )
    app.state.profile_cache = cache
    app.state.metrics.registry.register(cache)
    app.add_exception_handler(CustomerMoved, _moved)
    return app
