"""Builds the complaint-api application."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from complaint_api.callbacks.router import router as callbacks_router
from complaint_api.complaints.router import router as complaints_router
from complaint_api.config import Settings
from complaint_api.kb.router import router as kb_router
from complaint_api.lifespan import lifespan
from complaint_api.privacy.router import router as privacy_router
from complaint_api.recovery.router import router as recovery_router
from complaint_api.sla.router import router as sla_router
from complaint_api.stats.router import router as stats_router
from complaint_api.webhooks.router import router as webhooks_router
from crm_kit.app import build_app

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"

DESCRIPTION = """
The complaint service (客户抱怨处理) of the retail CRM: intake on every channel, instant answers from the
policy and service manual (knowledge base), escalation to the responsible person, reply and close,
satisfaction, SLA by priority and customer tier, and service recovery (服务复原) until the customer buys again.

Authenticate with `Authorization: Bearer <api-key>`. Errors are `application/problem+json` (RFC 9457).
Lists page with `limit` and `cursor`. Creates accept `Idempotency-Key`; transitions take `If-Match`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return build_app(
        settings,
        title="complaint-api",
        version="0.1.0",
        description=DESCRIPTION,
        routers=[
            complaints_router,
            recovery_router,
            callbacks_router,
            kb_router,
            sla_router,
            stats_router,
            webhooks_router,
            privacy_router,
        ],
        alembic_ini=ALEMBIC_INI,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "complaints", "description": "Complaint intake and lifecycle"},
            {"name": "recovery", "description": "Service recovery: plans, actions, follow-ups, outcomes"},
            {"name": "knowledge base", "description": "The policy and service manual, searchable"},
            {"name": "sla", "description": "Targets per priority on the business calendar"},
            {"name": "callbacks", "description": "Call-back requests and their queue"},
            {"name": "statistics", "description": "Complaint statistics"},
            {"name": "webhooks", "description": "Signed event delivery to other systems"},
            {"name": "privacy", "description": "PIPL: everything held about a customer, as one document"},
            {"name": "health", "description": "Liveness, readiness, metrics"},
        ],
    )
