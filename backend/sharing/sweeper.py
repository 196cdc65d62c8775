"""The reservation expiry sweeper (SPEC §4.3, §11.1): a background task of every instance.

Each pass expires what is due with `FOR UPDATE SKIP LOCKED` (bookings.expire_due), so any number
of instances can sweep at once and each reservation expires, and is announced, exactly once.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncEngine

from backend import keys
from backend.realtime.bus import Bus
from backend.sharing.bookings import expire_due
from backend.tasks import Step, drain, periodic

BATCH = 100


async def sweep(db: AsyncEngine, bus: Bus, expired: Counter) -> None:
    """One pass: expire batches until fewer than a full batch was due."""
    await drain(lambda: expire_due(db, bus, BATCH), BATCH, expired.inc)


def bind(app: web.Application) -> Step:
    """The pass over this app's database and bus, counted in its metrics."""
    registry = app[keys.METRICS].registry
    passes = Counter("reservation_sweeps", "Completed passes of the reservation sweeper", registry=registry)
    expired = Counter("reservations_expired", "Reservations this instance expired", registry=registry)
    db, bus = app[keys.DB], app[keys.BUS]

    async def step() -> None:
        try:
            await sweep(db, bus, expired)
        finally:
            passes.inc()            # a failed pass is a pass too: tests wait on this count

    return step


# Runs after the DB and the bus are open and stops before they close (sharing.setup appends it).
sweeper_ctx = periodic("reservation-sweeper", lambda app: app[keys.CONFIG].sweep_interval, bind)
