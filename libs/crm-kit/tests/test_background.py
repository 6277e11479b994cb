"""Background jobs run while the body runs and are cancelled, and awaited, when it ends. A claim on a shared job
heartbeats while it is held and is handed back when its holder is cancelled."""

from __future__ import annotations

import asyncio

import pytest

from crm_kit.background import holding_claim, running


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
