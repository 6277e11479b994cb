"""Builds the recommend-api application."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from crm_kit.app import build_app
from recommend_api.builds.router import router as models_router
from recommend_api.config import Settings
from recommend_api.lifespan import lifespan
from recommend_api.recommendations.router import router as recommendations_router
from recommend_api.sync.router import router as sync_router

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"

DESCRIPTION = """
Cross-sell from purchase history (连锁效应) for the retail CRM: buy-again, bought-together, basket
completion, association rules, popular items and win-back offers for customers recovering from a complaint.
It keeps its own copy of customer-api's purchases (the purchase feed) and follows the customer feed, so
merges, erasure, restriction and withdrawn profiling consent take effect here too.

Authenticate with `Authorization: Bearer <api-key>`: `recommendations:read` to read,
`recommendations:admin` to sync and build. Errors are `application/problem+json` (RFC 9457).
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return build_app(
        settings,
        title="recommend-api",
        version="0.1.0",
        description=DESCRIPTION,
        routers=[recommendations_router, models_router, sync_router],
        alembic_ini=ALEMBIC_INI,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "recommendations", "description": "Personal, basket, related, popular, rules, recovery"},
            {"name": "models", "description": "Model builds and the served version"},
            {"name": "sync", "description": "The copy of customer-api's purchases and customer changes"},
            {"name": "health", "description": "Liveness, readiness, metrics"},
        ],
    )
