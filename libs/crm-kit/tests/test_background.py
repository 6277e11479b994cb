"""Background jobs run while the body runs and are cancelled, and awaited, when it ends; a repeated one goes on
after a failure and is counted in the metrics. A claim on a shared job heartbeats while it is held and is handed
back when its holder is cancelled."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import generate_latest

from crm_kit.background import holding_claim, repeat, running
from crm_kit.observability import Metrics


async def test_jobs_run_for_the_body_and_stop_with_it() -> None:
    ticks: list[str] = []
    stopped: list[str] = []

    async def job(name: str) -> None:
        try:
            while True:
                ticks.append(name)
                await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            stopped.append(name)
            raise

    async with running({"a": job("a"), "b": job("b")}):
        await asyncio.sleep(0.05)
        assert {t.get_name() for t in asyncio.all_tasks()} >= {"a", "b"}
    assert {"a", "b"} <= set(ticks) and sorted(stopped) == ["a", "b"]
    assert not {t.get_name() for t in asyncio.all_tasks()} & {"a", "b"}


async def test_a_repeated_job_goes_on_after_failures_and_is_counted_by_outcome() -> None:
    metrics = Metrics("svc")
    outcomes: list[object] = [RuntimeError("database down"), False, None, True]
    done = asyncio.Event()

    async def step() -> object:
        outcome = outcomes.pop(0)
        if not outcomes:
            done.set()
        if isinstance(outcome, Exception):
            raise outcome
        return outcome  # False: failed and logged by the step itself; anything else: succeeded

    before = time.time()
    async with running({"repeated": repeat("nightly", step, every=0.01, metrics=metrics)}):
        await asyncio.wait_for(done.wait(), 5)
    counted = generate_latest(metrics.registry).decode()
    assert 'background_job_runs_total{job="nightly",outcome="failed",service="svc"} 2.0' in counted
    assert 'background_job_runs_total{job="nightly",outcome="succeeded",service="svc"} 2.0' in counted
    assert 'background_job_duration_seconds_count{job="nightly",service="svc"} 4.0' in counted
    last = metrics.registry.get_sample_value(
        "background_job_last_success_timestamp_seconds", {"job": "nightly", "service": "svc"}
    )
    assert last is not None and before <= last <= time.time()


async def test_a_repeated_job_runs_again_at_once_when_woken() -> None:
    metrics = Metrics("svc")
    wake = asyncio.Event()
    runs = 0
    second = asyncio.Event()

    async def step() -> None:
        nonlocal runs
        runs += 1
        if runs == 2:
            second.set()

    async with running({"repeated": repeat("on-demand", step, every=3600, metrics=metrics, wake=wake)}):
        await asyncio.sleep(0.05)
        assert runs == 1  # then waits for its hour
        wake.set()
        await asyncio.wait_for(second.wait(), 5)
        assert not wake.is_set()  # cleared for the next request


async def test_a_claim_beats_while_the_body_runs_and_stops_beating_after() -> None:
    beats = 0
    three = asyncio.Event()

    async def beat() -> None:
        nonlocal beats
        beats += 1
        if beats == 3:
            three.set()

    async def release() -> None:
        raise AssertionError("a body that ends is not a hand-back")

    async with holding_claim(beat=beat, every=0.001, release=release):
        await three.wait()  # one long step: the beats go on during it
    after = beats
    for _ in range(5):
        await asyncio.sleep(0.002)
    assert after >= 3 and beats == after


async def test_a_failed_beat_does_not_stop_the_next() -> None:
    attempts = 0
    recovered = asyncio.Event()

    async def beat() -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionError("database restarting")
        recovered.set()

    async def release() -> None: ...

    async with holding_claim(beat=beat, every=0.001, release=release):
        await recovered.wait()
    assert attempts >= 2


async def test_a_cancelled_claim_is_released_after_its_last_beat_and_the_cancellation_goes_on() -> None:
    writes: list[str] = []
    beaten = asyncio.Event()

    async def beat() -> None:
        writes.append("beat")
        beaten.set()

    async def release() -> None:
        await asyncio.sleep(0)  # a database round trip
        writes.append("release")

    async def job() -> None:
        async with holding_claim(beat=beat, every=0.001, release=release):
            await asyncio.Event().wait()

    task = asyncio.create_task(job())
    await beaten.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert writes[-1] == "release" and writes.count("release") == 1 and "beat" in writes
    for _ in range(5):
        await asyncio.sleep(0.002)
    assert writes[-1] == "release"


async def test_a_second_cancellation_does_not_interrupt_the_release() -> None:
    releasing, may_finish, released = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def beat() -> None: ...

    async def release() -> None:
        releasing.set()
        await may_finish.wait()
        released.set()

    async def job() -> None:
        async with holding_claim(beat=beat, every=60, release=release):
            await asyncio.Event().wait()

    task = asyncio.create_task(job())
    await asyncio.sleep(0)
    task.cancel()
    await releasing.wait()
    task.cancel()  # say, a shutdown that ran out of patience
    with pytest.raises(asyncio.CancelledError):
        await task
    may_finish.set()
    await released.wait()


async def test_a_release_that_hangs_is_given_up_after_its_time() -> None:
    stuck = asyncio.Event()

    async def beat() -> None: ...

    async def release() -> None:
        await stuck.wait()  # the database does not answer

    async def job() -> None:
        async with holding_claim(beat=beat, every=60, release=release, release_within=0.01):
            await asyncio.Event().wait()

    task = asyncio.create_task(job())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
