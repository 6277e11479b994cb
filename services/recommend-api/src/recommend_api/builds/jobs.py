"""The build worker and model poller every replica runs: claim a queued build and run it; load newer models."""

from __future__ import annotations

import logging
import os
import socket

from fastapi import FastAPI

from crm_kit.background import repeat
from crm_kit.db import Database
from recommend_api.builds.current import load_newer
from recommend_api.builds.service import claim_build, run_build
from recommend_api.config import Settings
from recommend_api.sync.audience import refresh_audience
from recommend_api.sync.catalogue import refresh_catalogue

log = logging.getLogger(__name__)
BUILDER = f"{socket.gethostname()}:{os.getpid()}"


async def load_current(app: FastAPI) -> None:
    """Swap in the newest built model if this replica serves an older one; refresh the audience and catalogue."""
    database: Database = app.state.database
    serving = app.state.current
    async with database.session_scope(read_only=True) as session:
        newer = await load_newer(session, serving.version if serving else None)
        await refresh_audience(session, app.state.audience)
        await refresh_catalogue(session, app.state.catalogue)
    if newer is not None:
        app.state.current = newer  # one reference swap: a request sees the old model or the new, never a mix
        log.info("model_loaded", extra={"version": newer.version})


async def work_once(app: FastAPI) -> bool:
    """Run every queued build, then serve the newest model; False if a build failed (logged and recorded)."""
    settings: Settings = app.state.settings
    database: Database = app.state.database
    succeeded = True
    while (
        claim := await claim_build(database, builder=BUILDER, stale_seconds=settings.build_stale_seconds)
    ) is not None:
        try:
            await run_build(
                database, claim, settings.model_params(), heartbeat_seconds=settings.build_stale_seconds / 4
            )
        except Exception:
            log.exception("model_build_failed", extra={"version": claim.version})
            succeeded = False
    await load_current(app)
    return succeeded


async def build_loop(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    await repeat(
        "recommend-builds", lambda: work_once(app), every=settings.model_poll_seconds,
        metrics=app.state.metrics, wake=app.state.build_wakeup,
    )  # fmt: skip
