"""What complaint-api runs for its lifetime: the client for customer-api, the calendar, background jobs."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from complaint_api.complaints.jobs import background_jobs
from complaint_api.config import Settings
from complaint_api.webhooks.jobs import webhook_delivery
from crm_kit.http import PeerClient, PeerConfig


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    app.state.calendar = settings.calendar()
    key = settings.customer_api_key or (settings.dev_api_key if settings.environment != "production" else None)
    async with PeerClient("customer-api", PeerConfig(base_url=settings.customer_api_url, api_key=key)) as peer:
        app.state.customer_api = peer
        async with background_jobs(app), webhook_delivery(app):
            yield
