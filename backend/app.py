"""The application factory: assembly only, no I/O (STYLE 2.4)."""

from __future__ import annotations

import gc
import os
import socket
import uuid
from collections.abc import AsyncIterator

from aiohttp import web

from backend import auth, callup, chat, fleet, keys, realtime, sharing
from backend.api.middlewares import pipeline
from backend.api.middlewares import setup as response_headers
from backend.auth.origin import check_origin, setup_cors
from backend.auth.resolve import authenticate
from backend.auth.sessions import finish_session
from backend.config import Config
from backend.db import (
    Replica,
    attach_hot_replica,
    attach_replica,
    detach_hot_replica,
    make_engine,
    make_hot_pool,
    make_hot_replica_pool,
    make_replica_engine,
)
from backend.kv import redis_ctx
from backend.metrics import Metrics
from backend.ops import dashboard, health, openapi


async def db_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open the SQLAlchemy engine (asyncpg pool) for the app's lifetime."""
    config = app[keys.CONFIG]
    if config.database_url is None:
        raise RuntimeError("DATABASE_URL is not set (run.py starts an embedded PostgreSQL when it is missing)")
    engine = make_engine(config.database_url, pool_size=config.db_pool_size,
                         max_overflow=config.db_max_overflow)
    pool = engine.pool
    app[keys.METRICS].watch_pool(lambda: {"checked_out": pool.checkedout(),  # type: ignore[attr-defined]
                                          "idle": pool.checkedin()})          # type: ignore[attr-defined]
    app[keys.DB] = engine
    yield
    await engine.dispose()


async def replica_ctx(app: web.Application) -> AsyncIterator[None]:
    """Attach the read replica's engine to the primary's, when DATABASE_REPLICA_URL is set (SPEC §13.2)."""
    config = app[keys.CONFIG]
    if config.database_replica_url is None:
        yield
        return
    engine = make_replica_engine(config.database_replica_url, pool_size=config.db_pool_size,
                                 max_overflow=config.db_max_overflow)
    attach_replica(app[keys.DB], Replica(engine, retry_after=config.replica_retry))
    yield
    await engine.dispose()


async def hot_db_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open the raw asyncpg pool of the hot paths (backend.db.make_hot_pool), and the replica's beside
    it when DATABASE_REPLICA_URL is set (lag-tolerant hot reads, backend.db.hot_read)."""
    config = app[keys.CONFIG]
    assert config.database_url is not None          # db_ctx, opened before this, refuses it otherwise
    size = max(2, config.db_hot_pool_size)   # records keep one connection back for auth (fleet)
    pool = await make_hot_pool(config.database_url, max_size=size)
    replica = None
    if config.database_replica_url is not None:     # replica_ctx, opened before this, attached its engine
        replica = await make_hot_replica_pool(config.database_replica_url, max_size=size)
        attach_hot_replica(pool, replica, app[keys.DB])
    app[keys.HOT_DB] = pool
    yield
    detach_hot_replica(pool)
    if replica is not None:
        await replica.close()
    await pool.close()


# A serving process collects its youngest generation after 50,000 net allocations instead of 700,
# and the older ones every 20 collections of the one below instead of 10. Connections and their
# subscriptions are long-lived objects: the default thresholds walked them again and again while a
# storm built them (10k authenticated connects: 5.3 → 3.5 server CPU s, 3.3 with no collector at
# all; scripts/bench/ws_fanout.py). Cyclic garbage waits a little longer; nothing else changes.
SERVING_GC_THRESHOLDS = (50_000, 20, 20)


async def freeze_startup_heap(app: web.Application) -> None:
    """on_startup of a serving process (run.py serve, gunicorn), never of tests: take what imports and
    startup built out of the garbage collector's way.

    A full collection walks every tracked object, and the ≈ 120k that startup leaves (SQLAlchemy,
    pydantic, routes) never become garbage; a storm of 10k connects ran several full collections
    over them (bench: 15–25 % less server CPU per connect once frozen). A test process builds an app
    per test, and each freeze would keep that test's objects for good. Then the collector's
    thresholds for a serving process (SERVING_GC_THRESHOLDS).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVING_GC_THRESHOLDS)


def create_app(config: Config) -> web.Application:
    """Build the whole service for `config`; run.py, gunicorn and the tests all call this."""
    app = web.Application(
        # One middleware, its steps in order; error answers of cookie surfaces get a sessid too.
        middlewares=[pipeline(before=[authenticate, check_origin], after=[finish_session])],
        # The photo limit is the largest body any route takes; JSON routes enforce MAX_BODY_SIZE
        # themselves while reading (backend.api.validation.read_body).
        client_max_size=max(config.max_body, config.max_photo),
    )
    app[keys.CONFIG] = config
    app[keys.METRICS] = Metrics()
    app[keys.INSTANCE] = config.instance or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    # Domains append their own contexts (sweepers) in setup(), after these: opened later, closed sooner.
    app.cleanup_ctx.extend([db_ctx, replica_ctx, hot_db_ctx, redis_ctx, realtime.bus_ctx,
                            callup.calls_ctx])   # needs the DB and the bus
    for domain in (realtime, auth, fleet, sharing, callup, chat, health, openapi, dashboard):
        domain.setup(app)
    response_headers(app)   # nosniff and a neutral Server header on every response
    setup_cors(app)   # last: aiohttp-cors wraps every route registered above
    return app
