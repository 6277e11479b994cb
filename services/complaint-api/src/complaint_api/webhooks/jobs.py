"""The webhook delivery loop: fan complaint events out to webhooks, then send what is due, every second.

A pass (`deliver_once`) runs fan-out per webhook, then rounds of claim → commit → send → record until a
round finds nothing due. The HTTP calls happen outside any transaction and hold no row lock: a claim leases
its deliveries (service.LEASE), and a result is stored only by the attempt that still owns the delivery.
Every replica runs the loop; claims keep them from sending the same delivery at the same time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import httpx
import structlog
from fastapi import FastAPI

from complaint_api.webhooks import service
from complaint_api.webhooks.destinations import RefusedDestination, check_destination
from complaint_api.webhooks.service import Claim
from crm_kit.background import running
from crm_kit.db import Database, utcnow

log = structlog.get_logger(__name__)

POLL_SECONDS = 1.0
# Receivers are strangers on the internet: short timeouts, and a deadline for the whole exchange so that a
# receiver trickling its answer cannot hold a send for long. A round (CLAIM_LIMIT sends, SEND_CONCURRENCY
# at a time) must end well within the lease: 2 waves x 10 s < 60 s.
TIMEOUT = httpx.Timeout(connect=2.0, read=5.0, write=5.0, pool=5.0)
SEND_DEADLINE_SECONDS = 10.0
SEND_CONCURRENCY = 10
MAX_ROUNDS = 20
USER_AGENT = "complaint-api-webhooks/0.1"


def http_client() -> httpx.AsyncClient:
    # Not the peer client: no API key to carry, no retries of its own (the delivery schedule retries), and
    # no redirects (a 3xx is a failed attempt rather than a POST replayed to wherever it points).
    return httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False, headers={"User-Agent": USER_AGENT})


async def send(http: httpx.AsyncClient, claim: Claim, *, allow_private: bool) -> tuple[int | None, str | None]:
    """POST one delivery; returns (status code, error). The answer's body is never read."""
    try:
        await check_destination(claim.url, allow_private=allow_private)
    except RefusedDestination as exc:
        return None, f"refused: {exc}"
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-CRM-Event": claim.event_type,
        "X-CRM-Delivery": str(claim.delivery_id),
        "X-CRM-Timestamp": timestamp,
        "X-CRM-Signature": service.sign(claim.secret, timestamp, claim.body),
    }
    try:
        async with (
            asyncio.timeout(SEND_DEADLINE_SECONDS),
            http.stream("POST", claim.url, content=claim.body, headers=headers) as response,
        ):
            status = response.status_code
    except (httpx.HTTPError, httpx.InvalidURL, TimeoutError, OSError) as exc:
        detail = str(exc) or "no detail"
        return None, f"{type(exc).__name__}: {detail}"
    return status, None if 200 <= status < 300 else f"answered HTTP {status}"


async def _attempt(
    database: Database, http: httpx.AsyncClient, claim: Claim, gate: asyncio.Semaphore, *, allow_private: bool
) -> bool:
    async with gate:
        status_code, error = await send(http, claim, allow_private=allow_private)
    try:
        async with database.session_scope() as session:
            outcome = await service.record_result(session, claim, status_code=status_code, error=error, now=utcnow())
    except Exception:
        # Unrecorded, the delivery stays leased and is sent again when the lease ends (the receiver dedupes).
        log.exception("webhook_result_not_recorded", delivery_id=str(claim.delivery_id))
        return False
    if outcome != "delivered":
        log.info(
            "webhook_attempt_failed",
            webhook_id=str(claim.webhook_id),
            delivery_id=str(claim.delivery_id),
            attempt=claim.attempt,
            status=outcome,
            error=error,
        )
    return outcome == "delivered"


async def deliver_once(app: FastAPI) -> int:
    """One pass: fan out new events, then send due deliveries until none is left; returns how many arrived."""
    database: Database = app.state.database
    http: httpx.AsyncClient = app.state.webhook_http
    async with database.session_scope(read_only=True) as session:
        behind = await service.webhooks_behind(session)
    for webhook_id in behind:
        try:
            async with database.session_scope() as session:
                await service.fan_out(session, webhook_id=webhook_id, now=utcnow())
        except Exception:
            # One webhook's trouble must not hold up the others; it is tried again next pass.
            log.exception("webhook_fan_out_failed", webhook_id=str(webhook_id))
    delivered = 0
    allow_private: bool = app.state.settings.webhook_allow_private
    gate = asyncio.Semaphore(SEND_CONCURRENCY)
    # A complaint's next delivery becomes eligible when the one before it arrived: keep going in rounds.
    for _ in range(MAX_ROUNDS):
        async with database.session_scope(read_only=True) as session:
            if not await service.has_due(session, utcnow()):
                break
        async with database.session_scope() as session:
            claims = await service.claim_due(session, now=utcnow())
        if not claims:
            break
        attempts = (_attempt(database, http, claim, gate, allow_private=allow_private) for claim in claims)
        results = await asyncio.gather(*attempts)
        delivered += sum(results)
    return delivered


@contextlib.asynccontextmanager
async def webhook_delivery(app: FastAPI) -> AsyncIterator[None]:
    """Run the delivery loop for the app's lifetime, with its HTTP client in `app.state.webhook_http`."""
    async with http_client() as http:
        app.state.webhook_http = http

        async def loop() -> None:
            while True:
                try:
                    await deliver_once(app)
                except Exception:
                    log.exception("webhook_delivery_failed")
                await asyncio.sleep(POLL_SECONDS)

        async with running({"webhook-delivery": loop()}):
            yield
