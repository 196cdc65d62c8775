"""The reservation expiry sweeper (SPEC §4.3, §11.1): a background task of every instance.

Each pass expires what is due with `FOR UPDATE SKIP LOCKED` (bookings.expire_due), so any number
of instances can sweep at once and each reservation expires, and is announced, exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import Counter

from backend import keys
from backend.sharing.bookings import expire_due

log = logging.getLogger("backend.sharing.sweeper")

BATCH = 100
MIN_INTERVAL = 0.01        # SWEEP_INTERVAL=0 must not turn the loop into a busy spin


async def sweep(app: web.Application, expired: Counter) -> None:
    """One pass: expire batches until fewer than a full batch was due."""
    while True:
        count = await expire_due(app[keys.DB], app[keys.BUS], BATCH)
        expired.inc(count)
        if count < BATCH:
            return


async def _run(app: web.Application, passes: Counter, expired: Counter) -> None:
    interval = max(app[keys.CONFIG].sweep_interval, MIN_INTERVAL)
    while True:
        try:
            await sweep(app, expired)
        except Exception:
            # A lost database must not end the task: reservations would never expire again.
            log.warning("reservation sweep failed", exc_info=True)
        passes.inc()
        await asyncio.sleep(interval)


async def sweeper_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run the sweeper while the app runs (after the DB and the bus are open; closed before them)."""
    registry = app[keys.METRICS].registry
    passes = Counter("reservation_sweeps", "Completed passes of the reservation sweeper", registry=registry)
    expired = Counter("reservations_expired", "Reservations this instance expired", registry=registry)
    task = asyncio.create_task(_run(app, passes, expired), name="reservation-sweeper")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
