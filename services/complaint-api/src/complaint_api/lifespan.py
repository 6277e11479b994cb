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
    dev_key = settings.dev_api_key if settings.environment != "production" else None
    customer_api = PeerConfig(base_url=settings.customer_api_url, api_key=settings.customer_api_key or dev_key)
    recommend_api = PeerConfig(base_url=settings.recommend_api_url, api_key=settings.recommend_api_key or dev_key)
    async with PeerClient("customer-api", customer_api) as peer, PeerClient("recommend-api", recommend_api) as offers:
        app.state.customer_api = peer
        app.state.recommend_api = offers
        async with background_jobs(app), webhook_delivery(app):
            yield
