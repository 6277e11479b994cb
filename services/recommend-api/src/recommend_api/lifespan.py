"""What recommend-api runs for its lifetime: the client for customer-api, the served model, background jobs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from crm_kit.background import running
from crm_kit.http import PeerClient, PeerConfig
from recommend_api.builds.jobs import build_loop, load_current
from recommend_api.config import Settings
from recommend_api.sync.audience import Audience
from recommend_api.sync.catalogue import Catalogue
from recommend_api.sync.jobs import sync_loop


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    app.state.current = None
    app.state.audience = Audience()
    app.state.catalogue = Catalogue()
    app.state.sync_lock = asyncio.Lock()
    app.state.build_wakeup = asyncio.Event()
    await load_current(app)  # a restarted replica serves the stored model from its first request
    key = settings.customer_api_key or (settings.dev_api_key if settings.environment != "production" else None)
    async with PeerClient("customer-api", PeerConfig(base_url=settings.customer_api_url, api_key=key)) as peer:
        app.state.customer_api = peer
        async with running({"recommend-sync": sync_loop(app), "recommend-builds": build_loop(app)}):
            yield
