"""Background jobs that live as long as an application: started on entry, cancelled and awaited on exit; and the
claim a replica holds on a shared job (one any replica may run) while it runs it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from typing import Any

import structlog

from crm_kit.observability import Metrics

log = structlog.get_logger(__name__)


@contextlib.asynccontextmanager
async def running(jobs: Mapping[str, Coroutine[Any, Any, Any]]) -> AsyncIterator[None]:
    """Run each job (task name → coroutine) for the body's lifetime; cancel and await them all at its end."""
    tasks = [asyncio.create_task(job, name=name) for name, job in jobs.items()]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def repeat(
    job: str,
    step: Callable[[], Awaitable[object]],
    *,
    every: float,
    metrics: Metrics,
    wake: asyncio.Event | None = None,
) -> None:
    """Run `step` for ever: again `every` seconds after each run ends, or as soon as `wake` is set.

    A run fails when it raises (logged as `background_job_failed`, with the job's name) or returns False (it
    logged and recorded a failure of its own, such as a model build's); the next run goes on either way. Each
    run is counted by outcome with its duration, and a successful one sets the job's last-success time, so that a
    job that stopped succeeding (a sync that cannot reach its peer, a sweep on a failing database) shows in the
    metrics, not only in the logs.
    """
    while True:
        started = time.perf_counter()
        try:
            succeeded = await step() is not False
        except Exception:
            log.exception("background_job_failed", job=job)
            succeeded = False
        metrics.job_ran(job, time.perf_counter() - started, succeeded=succeeded)
        if wake is None:
            await asyncio.sleep(every)
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), every)
        wake.clear()


@contextlib.asynccontextmanager
async def holding_claim(
    *,
    beat: Callable[[], Awaitable[object]],
    every: float,
    release: Callable[[], Awaitable[object]],
    release_within: float = 5.0,
) -> AsyncIterator[None]:
    """Hold a claim on a shared job for the body's lifetime.

    `beat` (a heartbeat write) runs every `every` seconds, so other replicas see the holder alive however long
    one step of the job takes. When the body is cancelled (the process is shutting down), `release` hands the
    job back, so another replica, or this one once restarted, takes it over at once rather than after the stale
    timeout; then the cancellation goes on. The heartbeat has stopped before `release` starts, and `release`
    runs in a task of its own: the cancellation is not delivered into it, and a second one only stops the
    waiting. It is given `release_within` seconds; a release that fails leaves the claim to the stale timeout.
    """
    beating = asyncio.create_task(_beat_every(beat, every))
    try:
        yield
    except asyncio.CancelledError:
        handing_back = asyncio.create_task(_hand_back(beating, release))
        done, _ = await asyncio.wait({handing_back}, timeout=release_within)
        if not done:
            handing_back.cancel()
            log.warning("claim_release_timed_out", seconds=release_within)
        elif (error := handing_back.exception()) is not None:
            log.warning("claim_release_failed", error=repr(error))
        raise
    finally:
        beating.cancel()
        await asyncio.wait({beating})


async def _beat_every(beat: Callable[[], Awaitable[object]], every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await beat()
        except Exception:  # a database blip: the next beat may get through before the claim goes stale
            log.exception("heartbeat_failed")


async def _hand_back(beating: asyncio.Task[None], release: Callable[[], Awaitable[object]]) -> None:
    # The release is the claim's last write: no beat lands after it.
    beating.cancel()
    await asyncio.wait({beating})
    await release()
