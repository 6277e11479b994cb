"""Background jobs run while the body runs and are cancelled, and awaited, when it ends."""

from __future__ import annotations

import asyncio

from crm_kit.background import running


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
