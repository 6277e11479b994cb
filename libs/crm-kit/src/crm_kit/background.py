"""Background jobs that live as long as an application: started on entry, cancelled and awaited on exit."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine, Mapping
from typing import Any


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
