"""Periodic background tasks of an instance, each owned by one cleanup context (STYLE 2.5).

Every sweeper is registered the same way: `app.cleanup_ctx.append(periodic(name, interval, bind))`.
The task starts once the contexts before it (DB, Redis, bus) are open and is cancelled before
they close; a failing pass is logged and the next one runs on time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

log = logging.getLogger("backend.tasks")

Step = Callable[[], Awaitable[None]]
CleanupContext = Callable[[web.Application], AsyncIterator[None]]

MIN_INTERVAL = 0.01        # an interval of 0 must not turn the loop into a busy spin


async def _repeat(name: str, step: Step, interval: float) -> None:
    while True:
        try:
            await step()
        except Exception:
            # A lost database or Redis must not end the task: the work would never be done again.
            log.warning("%s: pass failed", name, exc_info=True)
        await asyncio.sleep(interval)


def periodic(name: str, interval: Callable[[web.Application], float],
             bind: Callable[[web.Application], Step]) -> CleanupContext:
    """A cleanup context running `bind(app)()` every `interval(app)` seconds while the app runs.

    `bind` is called once at startup, when the app's resources are open: it takes from the app what
    the step needs (engine, bus, metrics) so the step itself receives explicit dependencies.
    `name` names the asyncio task and the log lines.
    """
    async def context(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_repeat(name, bind(app), max(interval(app), MIN_INTERVAL)), name=name)
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    context.__name__ = context.__qualname__ = f"{name.replace('-', '_')}_ctx"
    return context


async def drain(step: Callable[[], Awaitable[int]], batch: int, counted: Callable[[int], object]) -> None:
    """Repeat `step` while it keeps handling a full `batch`, reporting each batch's count to `counted`.

    Sweepers work in batches so one transaction never locks an unbounded number of rows; each
    batch is counted as it commits, so a later failing batch does not hide the earlier ones.
    """
    while True:
        count = await step()
        counted(count)
        if count < batch:
            return
