"""The scheduled sync: both feeds followed on a timer, and a scheduled rebuild asked for when one is due (an
erasure or a merge queues its own, with the feed page that brought it: sync/service.py)."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from crm_kit.background import repeat
from crm_kit.db import Database
from recommend_api.builds.service import rebuild_due, request_build
from recommend_api.config import Settings
from recommend_api.sync.audience import refresh_audience
from recommend_api.sync.catalogue import refresh_catalogue
from recommend_api.sync.service import SyncResult, sync_once

log = logging.getLogger(__name__)


async def sync_now(app: FastAPI, *, max_pages: int = 1000) -> SyncResult:
    """One sync pass on this replica (the timer's and `POST /v1/sync`'s, never both at once)."""
    settings: Settings = app.state.settings
    database: Database = app.state.database
    async with app.state.sync_lock:
        result = await sync_once(
            database, app.state.customer_api, page_size=settings.sync_page_size, max_pages=max_pages
        )
        async with database.session_scope() as session:
            if await rebuild_due(session, every_minutes=settings.rebuild_minutes):
                await request_build(session, reason="scheduled")
        async with database.session_scope(read_only=True) as session:
            await refresh_audience(session, app.state.audience)
            await refresh_catalogue(session, app.state.catalogue)
    if result.erased or result.merged or result.orders:
        app.state.build_wakeup.set()
    return result


async def sync_loop(app: FastAPI) -> None:
    settings: Settings = app.state.settings

    async def sync_pass() -> bool:
        return not (await sync_now(app)).unreachable  # failed when customer-api could not be read

    await repeat("recommend-sync", sync_pass, every=settings.sync_seconds, metrics=app.state.metrics)
