"""Liveness, readiness and the Prometheus endpoint (SPEC §9)."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from backend import keys
from backend.api.responses import respond
from backend.db import read

CHECK_TIMEOUT = 2.0


async def database_ok(app: web.Application) -> bool:
    """True when a trivial query answers within CHECK_TIMEOUT."""
    async def probe() -> None:
        async with read(app[keys.DB]) as conn:
            await conn.execute(text("SELECT 1"))

    try:
        await asyncio.wait_for(probe(), CHECK_TIMEOUT)
    except Exception:  # any failure means "down"; the reason is for logs, not for the probe
        return False
    return True


async def redis_ok(app: web.Application) -> bool:
    try:
        return bool(await asyncio.wait_for(app[keys.REDIS].ping(), CHECK_TIMEOUT))
    except Exception:
        return False


async def live(request: web.Request) -> web.Response:
    """GET /health/live: the process answers."""
    return respond({"status": "ok", "instance": request.app[keys.INSTANCE]})


async def ready(request: web.Request) -> web.Response:
    """GET /health/ready and /health: 503 without the database, degraded without Redis."""
    app = request.app
    db_up, redis_up = await asyncio.gather(database_ok(app), redis_ok(app))
    connections = 0
    with contextlib.suppress(KeyError):
        connections = app[keys.CONNECTION_COUNT]()
    body = {
        # SPEC §9 knows two statuses; a lost database is told by the 503 and "db": "down".
        "status": "ok" if db_up and redis_up else "degraded",
        "db": "ok" if db_up else "down",
        "redis": "ok" if redis_up else "down",
        "instance": app[keys.INSTANCE],
        "connections": connections,
    }
    return respond(body, status=200 if db_up else 503)


async def metrics(request: web.Request) -> web.Response:
    """GET /metrics in Prometheus text format."""
    payload = generate_latest(request.app[keys.METRICS].registry)
    response = web.Response(body=payload)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


def setup(app: web.Application) -> None:
    app.router.add_get("/health/live", live)
    app.router.add_get("/health/ready", ready)
    app.router.add_get("/health", ready)
    app.router.add_get("/metrics", metrics)
