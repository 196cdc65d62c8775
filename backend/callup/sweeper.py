"""The order sweeper (SPEC §6.4, §11.1): a background task of every instance.

Each pass expires orders past their TTL and fails calls stuck in `calling`, both with
`FOR UPDATE SKIP LOCKED` (orders._bulk_change), so any number of instances can sweep at once
and every order changes, and is announced, exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from prometheus_client import Counter

from backend import keys
from backend.callup.orders import expire_due, fail_stuck

log = logging.getLogger("backend.callup.sweeper")

BATCH = 100
MIN_INTERVAL = 0.01        # SWEEP_INTERVAL=0 must not turn the loop into a busy spin


async def _drain(step: Callable[[], Awaitable[int]], counter: Counter) -> None:
    """Repeat `step` while it keeps finding full batches."""
    while True:
        count = await step()
        counter.inc(count)
        if count < BATCH:
            return


async def sweep(app: web.Application, expired: Counter, failed: Counter) -> None:
    """One pass: expire what is due, then fail what has waited too long for its call."""
    db, bus, config = app[keys.DB], app[keys.BUS], app[keys.CONFIG]
    await _drain(lambda: expire_due(db, bus, BATCH), expired)
    await _drain(lambda: fail_stuck(db, bus, config.callup_call_timeout, BATCH), failed)


async def _run(app: web.Application, expired: Counter, failed: Counter) -> None:
    interval = max(app[keys.CONFIG].sweep_interval, MIN_INTERVAL)
    while True:
        try:
            await sweep(app, expired, failed)
        except Exception:
            # A lost database must not end the task: orders would never expire again.
            log.warning("call order sweep failed", exc_info=True)
        await asyncio.sleep(interval)


async def sweeper_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run the sweeper while the app runs (after the DB and the bus are open; closed before them)."""
    registry = app[keys.METRICS].registry
    expired = Counter("callup_orders_expired", "Call orders this instance expired", registry=registry)
    failed = Counter("callup_calls_timed_out", "Calls this instance failed after CALLUP_CALL_TIMEOUT",
                     registry=registry)
    task = asyncio.create_task(_run(app, expired, failed), name="callup-sweeper")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
