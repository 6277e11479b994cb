"""The webhook delivery loop: fan complaint events out to webhooks, then send what is due, every second.

A pass (`deliver_once`) keeps up to SEND_CONCURRENCY sends in flight: it claims as many deliveries as it has
free slots, and claims again as soon as a send ends, so no delivery waits for another webhook's slow send
(nor does one webhook take every slot: claims stop at its in-flight limit). While sends are in flight it
fans out new events every POLL_SECONDS; it ends when nothing is in flight and nothing can be claimed. The
HTTP calls happen outside any transaction and hold no row lock: a claim leases its deliveries
(service.LEASE), and a result is stored only by the attempt that still owns the delivery. Every replica runs
the loop; claims keep them from sending the same delivery at the same time.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator

import httpx
import structlog
from fastapi import FastAPI

from complaint_api.webhooks import service
from complaint_api.webhooks.destinations import RefusedDestination, check_destination
from complaint_api.webhooks.service import Claim
from crm_kit.background import repeat, running
from crm_kit.db import Database, utcnow

log = structlog.get_logger(__name__)

POLL_SECONDS = 1.0
# Receivers are strangers on the internet: short timeouts, and a deadline for the whole exchange so that a
# receiver trickling its answer cannot hold a send for long. A send starts as soon as it is claimed, so it
# ends well within the lease: 10 s < 60 s.
TIMEOUT = httpx.Timeout(connect=2.0, read=5.0, write=5.0, pool=5.0)
SEND_DEADLINE_SECONDS = 10.0
SEND_CONCURRENCY = 10
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


async def _attempt(database: Database, http: httpx.AsyncClient, claim: Claim, *, allow_private: bool) -> bool:
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


async def _fan_out(database: Database) -> None:
    """Queue deliveries for the events past each webhook's cursor."""
    async with database.session_scope(read_only=True) as session:
        behind = await service.webhooks_behind(session)
    for webhook_id in behind:
        try:
            async with database.session_scope() as session:
                await service.fan_out(session, webhook_id=webhook_id, now=utcnow())
        except Exception:
            # One webhook's trouble must not hold up the others; it is tried again next time.
            log.exception("webhook_fan_out_failed", webhook_id=str(webhook_id))


async def _claim(database: Database, *, limit: int) -> list[Claim]:
    """Claim up to `limit` deliveries; a plain read first keeps a loop with nothing to do off the write lock."""
    if limit == 0:
        return []
    async with database.session_scope(read_only=True) as session:
        if not await service.has_due(session, utcnow()):
            return []
    async with database.session_scope() as session:
        return await service.claim_due(session, now=utcnow(), limit=limit)


async def deliver_once(app: FastAPI) -> int:
    """One pass: send due deliveries, up to SEND_CONCURRENCY at once, fanning out new events meanwhile, until
    nothing is in flight or can be claimed; returns how many arrived."""
    database: Database = app.state.database
    http: httpx.AsyncClient = app.state.webhook_http
    allow_private: bool = app.state.settings.webhook_allow_private
    delivered = 0
    sending: set[asyncio.Task[bool]] = set()
    fanned_out_at = -math.inf
    async with asyncio.TaskGroup() as group:
        while True:
            if time.monotonic() - fanned_out_at >= POLL_SECONDS:
                fanned_out_at = time.monotonic()
                await _fan_out(database)
            claims = await _claim(database, limit=SEND_CONCURRENCY - len(sending))
            for claim in claims:
                sending.add(group.create_task(_attempt(database, http, claim, allow_private=allow_private)))
            if claims and len(sending) < SEND_CONCURRENCY:
                continue  # slots left: more may be due, or a webhook at its limit left some for the others
            if not sending:
                return delivered
            # A complaint's next delivery becomes eligible when the one before it arrived: claim again as soon
            # as any send ends, or after POLL_SECONDS for what fan-out and backoff have made due meanwhile.
            done, sending = await asyncio.wait(sending, timeout=POLL_SECONDS, return_when=asyncio.FIRST_COMPLETED)
            delivered += sum(task.result() for task in done)


@contextlib.asynccontextmanager
async def webhook_delivery(app: FastAPI) -> AsyncIterator[None]:
    """Run the delivery loop for the app's lifetime, with its HTTP client in `app.state.webhook_http`."""
    async with http_client() as http:
        app.state.webhook_http = http
        delivery = repeat("webhook-delivery", lambda: deliver_once(app), every=POLL_SECONDS, metrics=app.state.metrics)
        async with running({"webhook-delivery": delivery}):
            yield
