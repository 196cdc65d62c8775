"""The database engine: one shared MetaData, the engine's cleanup context, read and write helpers,
and the read replica that lag-tolerant reads prefer (SPEC §13.2)."""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import asyncpg
from sqlalchemy import ColumnElement, MetaData, String, event, literal_column
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

log = logging.getLogger("backend.db")

# Every domain's tables.py defines its Core tables on this one MetaData, so the schema test
# can compare all of them with the migrated database at once.
metadata = MetaData()


def async_url(url: str) -> str:
    """Turn any postgres URL into the asyncpg dialect URL SQLAlchemy wants."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    raise ValueError(f"not a PostgreSQL URL: {url!r}")


SERVER_SETTINGS = {"application_name": "realtime-backend", "timezone": "UTC"}


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int = 10) -> AsyncEngine:
    """An asyncpg engine.

    No pool_pre_ping: measured here it cost ~650 µs per checkout (a 1.1 ms read became 0.4 ms
    without it). After a database restart the first statement on a stale connection fails; the
    pool then drops every connection older than that failure, and the request answers 503
    (the middleware's error rendering), so one request per instance pays instead of all of them.
    """
    return create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=1800,
        connect_args={"server_settings": SERVER_SETTINGS, "timeout": 5},
    )


@asynccontextmanager
async def read(engine: AsyncEngine, *, lag_ok: bool = False) -> AsyncIterator[AsyncConnection]:
    """A connection in AUTOCOMMIT for read-only queries.

    SQLAlchemy's async engine wraps every statement in BEGIN/ROLLBACK; for plain reads that
    round trip is pure cost (SPEC §1.1 measured +40–85 % reads without it).

    `lag_ok`: the caller accepts data a little behind the primary (SPEC §13.2: the public car list
    and its snapshots, chat history pages, fleet lists), so the read goes to the replica attached
    to `engine`, if any, it is reachable, and this request (task) has not written yet.
    """
    replica = _replicas.get(engine) if lag_ok else None
    if replica is None or _wrote_here() or not replica.usable():
        async with engine.connect() as conn:      # inline: the path of every read without a replica
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")
        return
    async with _replica_or_primary(replica, lambda: _autocommit(replica.engine), lambda: _autocommit(engine)) as conn:
        yield cast(AsyncConnection, conn)


@asynccontextmanager
async def _autocommit(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        yield await conn.execution_options(isolation_level="AUTOCOMMIT")


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection inside one transaction, committed on success and rolled back on error."""
    wrote()
    async with engine.begin() as conn:
        yield conn


# ---- read replica (SPEC §13.2) ------------------------------------------------------------------

# The task that last wrote, set by transaction(). aiohttp runs each request in a task of its own,
# so "this task wrote" is "this request wrote". A task, not a flag: a new request's task starts
# from a copy of its parent's context, and a flag would leak into it. A websocket is one task,
# so a socket that wrote keeps reading from the primary.
_writer: ContextVar[asyncio.Task[Any] | None] = ContextVar("writer", default=None)


def wrote() -> None:
    """From here on this request reads its own writes: lag-tolerant reads stay on the primary.
    transaction() calls it; a write on a hot pool (raw asyncpg) calls it itself."""
    _writer.set(asyncio.current_task())


def _wrote_here() -> bool:
    writer = _writer.get()
    return writer is not None and writer is asyncio.current_task()

# The replica of each primary engine, keyed by the engine itself so every app in a process (tests
# run several) has its own and domain code keeps passing one engine around.
_replicas: weakref.WeakKeyDictionary[AsyncEngine, Replica] = weakref.WeakKeyDictionary()

# SQLSTATE classes after which the same read on the primary will do: 08 connection exception,
# 57 operator intervention (shutdown, crash), 40001 a recovery conflict cancelled the query.
_REPLICA_FAILURES = ("08", "57", "40001")


@dataclass
class Replica:
    """A read replica's engine and whether it is worth trying right now."""

    engine: AsyncEngine
    retry_after: float = 5.0
    down_until: float = field(default=0.0, init=False)

    def usable(self) -> bool:
        return time.monotonic() >= self.down_until

    def lost(self, exc: BaseException) -> None:
        """Send lag-tolerant reads to the primary for `retry_after` seconds, then try again."""
        if self.usable():
            log.warning("read replica unavailable, reading from the primary for %g s: %r",
                        self.retry_after, exc)
        self.down_until = time.monotonic() + self.retry_after


def replica_failure(exc: BaseException) -> bool:
    """Whether `exc` says the replica is gone, overloaded (its pool is exhausted) or cancelled the
    read, rather than the read is wrong."""
    if isinstance(exc, (OSError, TimeoutError, PoolTimeout)):
        return True
    if isinstance(exc, asyncpg.PostgresError):      # raw asyncpg, a hot pool's (hot_read)
        return str(exc.sqlstate).startswith(_REPLICA_FAILURES)
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    state = getattr(exc.orig, "sqlstate", None) or getattr(getattr(exc.orig, "__cause__", None), "sqlstate", "")
    return str(state).startswith(_REPLICA_FAILURES)


Opener = Callable[[], AbstractAsyncContextManager[Any]]


@asynccontextmanager
async def _replica_or_primary(replica: Replica, on_replica: Opener, on_primary: Opener) -> AsyncIterator[Any]:
    """A replica connection that falls back to the primary, or the primary's when the replica
    cannot give one (refused, timed out, still starting up). Both read() and hot_read()."""
    async with AsyncExitStack() as stack:
        try:
            conn = await stack.enter_async_context(on_replica())
        except Exception as exc:
            if not replica_failure(exc):
                raise
            replica.lost(exc)
            conn = None
        if conn is None:
            yield await stack.enter_async_context(on_primary())
        else:
            yield _FallbackConnection(conn, on_primary, replica, stack)


def _retrying(name: str) -> Callable[..., Awaitable[Any]]:
    """A method of _FallbackConnection that runs the connection's `name` through `_retry`."""
    async def method(self: _FallbackConnection, *args: Any, **kwargs: Any) -> Any:
        return await self._retry(name, *args, **kwargs)
    method.__name__ = method.__qualname__ = name
    return method


class _FallbackConnection:
    """A replica connection that moves to the primary when the replica fails under a statement.

    Reads are idempotent, so the failed statement runs again on the primary and the request never
    sees the replica go (no 5xx). Everything but the statement methods (SQLAlchemy's execute,
    scalar, scalars; asyncpg's fetch, fetchrow, fetchval) is the replica connection's own.
    """

    def __init__(self, conn: Any, primary: Opener, replica: Replica, stack: AsyncExitStack) -> None:
        self._conn, self._primary, self._replica, self._stack = conn, primary, replica, stack
        self._moved = False

    async def _retry(self, name: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return await getattr(self._conn, name)(*args, **kwargs)
        except Exception as exc:
            if self._moved or not replica_failure(exc):
                raise
            self._replica.lost(exc)
            self._moved = True
            self._conn = await self._stack.enter_async_context(self._primary())
            return await getattr(self._conn, name)(*args, **kwargs)

    # The statements a read may run, SQLAlchemy's and asyncpg's: each retried on the primary.
    execute = _retrying("execute")
    scalar = _retrying("scalar")
    scalars = _retrying("scalars")
    fetch = _retrying("fetch")
    fetchrow = _retrying("fetchrow")
    fetchval = _retrying("fetchval")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def make_replica_engine(url: str, *, pool_size: int, max_overflow: int) -> AsyncEngine:
    """An engine for a read replica: short connect timeout, dead connections dropped at checkout.

    A replica that went away leaves closed connections in the pool; asyncpg knows without a round
    trip (`is_closed()`), so checkout replaces them for free instead of paying pool_pre_ping on
    every read. A replica that is down fails the connect within 2 s and read() falls back.
    """
    engine = create_async_engine(
        async_url(url), pool_size=pool_size, max_overflow=max_overflow, pool_recycle=1800,
        connect_args={"server_settings": SERVER_SETTINGS, "timeout": 2})

    @event.listens_for(engine.sync_engine, "checkout")
    def drop_closed(dbapi_conn: Any, record: Any, proxy: Any) -> None:
        if record.driver_connection.is_closed():
            raise DisconnectionError("replica connection closed")

    return engine


def attach_replica(primary: AsyncEngine, replica: Replica) -> None:
    """Let lag-tolerant reads on `primary` use `replica` (until the primary engine is gone)."""
    _replicas[primary] = replica


async def make_hot_pool(url: str, *, max_size: int, min_size: int = 1, connect_timeout: float = 5) -> asyncpg.Pool:
    """A plain asyncpg pool for the few queries every request runs (the principal's identity).

    Measured here: the same identity query took ~1.1 ms through SQLAlchemy's async connection and
    ~0.5 ms on asyncpg directly (SPEC §1.1). Statements stay SQLAlchemy Core, compiled once by
    `compiled()`, so the tables have one definition.
    """
    dsn = async_url(url).replace("postgresql+asyncpg://", "postgresql://", 1)
    return await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, timeout=connect_timeout,
                                     server_settings=SERVER_SETTINGS, reset=_keep_session)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """A hot pool's release: asyncpg still rolls back a transaction left open, but skips its default
    reset query (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL), one more round trip per request
    for state hot paths never create: they run compiled statements only, no SET, LISTEN, cursors or
    advisory locks."""


async def make_hot_replica_pool(url: str, *, max_size: int) -> asyncpg.Pool:
    """The read replica's hot pool: no connection at startup (a replica that is down must not stop
    the service) and a short connect timeout, like make_replica_engine. A connection the replica
    closed is replaced at acquire for free (asyncpg checks is_closed()); hot_read() falls back."""
    return await make_hot_pool(url, max_size=max_size, min_size=0, connect_timeout=2)


# The replica pool of each primary hot pool. A plain dict: asyncpg pools take no weak references,
# so hot_db_ctx detaches it when it closes the pools.
_hot_replicas: dict[asyncpg.Pool, tuple[asyncpg.Pool, Replica]] = {}


def attach_hot_replica(primary: asyncpg.Pool, replica: asyncpg.Pool, engine: AsyncEngine) -> None:
    """Let lag-tolerant hot reads on `primary` use `replica`. They share the health of the replica
    attached to `engine` (the same server): a failure either path sees sends both to the primary."""
    _hot_replicas[primary] = (replica, _replicas[engine])


def detach_hot_replica(primary: asyncpg.Pool) -> None:
    _hot_replicas.pop(primary, None)


class HotReader(Protocol):
    """What hot_read() yields: an asyncpg connection, or one that moves to the primary."""

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]: ...

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None: ...

    async def fetchval(self, query: str, *args: Any) -> Any: ...


@asynccontextmanager
async def hot_read(pool: asyncpg.Pool, *, lag_ok: bool = False) -> AsyncIterator[HotReader]:
    """A hot pool connection for reads, read()'s rules on raw asyncpg: with `lag_ok` the attached
    replica's when there is one, it is usable and this request has not written (wrote()); a replica
    that fails before or under a statement hands the read to the primary (no 5xx, SPEC §13.2)."""
    attached = _hot_replicas.get(pool) if lag_ok else None
    if attached is None or _wrote_here() or not attached[1].usable():
        async with pool.acquire() as conn:
            yield cast(HotReader, conn)
        return
    replica_pool, health = attached
    async with _replica_or_primary(health, replica_pool.acquire, pool.acquire) as conn:
        yield cast(HotReader, conn)


@dataclass(frozen=True, slots=True)
class Statement:
    """A Core statement compiled once for a hot pool (raw asyncpg): its SQL with $n placeholders,
    its bind names in $n order and the constants the statement itself carries."""

    sql: str
    order: tuple[str, ...]
    constants: dict[str, Any]

    def args(self, **values: Any) -> list[Any]:
        """The positional arguments of one execution, from bind names."""
        return [values[name] if name in values else self.constants[name] for name in self.order]


def constant(value: str) -> ColumnElement[str]:
    """A string constant written into the SQL (`'reserved'`), not bound as a parameter.

    For predicates a partial index names (`WHERE status IN ('reserved', 'in_trip')`): PostgreSQL
    uses such an index only when it can prove the query's predicate implies the index's, and a
    bound `$2` is unknown to a prepared statement's generic plan. With parameters, a reservation's
    active-booking check scanned every booking of the table (or replanned on every execution); the
    sweepers scanned the whole table on every pass.
    """
    return literal_column("'" + value.replace("'", "''") + "'", String())


def constants(values: Iterable[str]) -> list[ColumnElement[str]]:
    """`constant` of each value, for `column.in_(constants(...))`."""
    return [constant(value) for value in values]


def compiled(statement: Any) -> Statement:
    """A Core statement (SELECT, INSERT, UPDATE, CTEs) as asyncpg SQL, so tables keep one definition
    while hot paths skip SQLAlchemy's execution layer; asyncpg's connections keep it prepared."""
    compiled_ = statement.compile(dialect=asyncpg_dialect())
    return Statement(str(compiled_), tuple(compiled_.positiontup or ()), dict(compiled_.params))
