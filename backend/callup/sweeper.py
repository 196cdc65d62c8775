"""The order sweeper (SPEC §6.4, §11.1): a background task of every instance.

Each pass expires orders past their TTL and fails calls stuck in `calling`, both with
`FOR UPDATE SKIP LOCKED` (orders._bulk_change), so any number of instances can sweep at once
and every order changes, and is announced, exactly once.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncEngine

from backend import keys
from backend.callup.orders import expire_due, fail_stuck
from backend.realtime.bus import Bus
from backend.tasks import Step, drain, periodic

BATCH = 100


async def sweep(db: AsyncEngine, bus: Bus, call_timeout: float, expired: Counter, failed: Counter) -> None:
    """One pass: expire what is due, then fail what has waited too long for its call."""
    await drain(lambda: expire_due(db, bus, BATCH), BATCH, expired.inc)
    await drain(lambda: fail_stuck(db, bus, call_timeout, BATCH), BATCH, failed.inc)


def bind(app: web.Application) -> Step:
    """The pass over this app's database and bus, counted in its metrics."""
    registry = app[keys.METRICS].registry
    expired = Counter("callup_orders_expired", "Call orders this instance expired", registry=registry)
    failed = Counter("callup_calls_timed_out", "Calls this instance failed after CALLUP_CALL_TIMEOUT",
                     registry=registry)
    db, bus, timeout = app[keys.DB], app[keys.BUS], app[keys.CONFIG].callup_call_timeout
    return lambda: sweep(db, bus, timeout, expired, failed)


# Runs after the DB and the bus are open and stops before they close (create_app lists it).
sweeper_ctx = periodic("callup-sweeper", lambda app: app[keys.CONFIG].sweep_interval, bind)
