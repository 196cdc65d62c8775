"""The Redis client: its cleanup context and the key prefix every Redis name goes through.

With REDIS_CLUSTER the client is a `RedisCluster` (REDIS_URL names any node; the others are
discovered). Every caller stays slot-safe by construction: a script's keys share one hash tag,
several keys of different slots are read with `get_many` (never a bare MGET), and multi-key
DEL and non-transactional pipelines are split per node by the cluster client itself (SPEC §13.1).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import hiredis
from aiohttp import web
from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis, RedisCluster
from redis.asyncio.connection import AbstractConnection, Connection
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError, NoScriptError, RedisError

from backend import keys

# What a lost or failing Redis raises through redis-py (connection errors are RedisError subclasses;
# a socket torn down mid-command can surface as a bare OSError).
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError)

# Every pooled connection busy (REDIS_POOL_SIZE) for longer than REDIS_POOL_TIMEOUT: an overloaded
# instance, not a lost Redis. A RedisError like an outage, so whatever only catches REDIS_ERRORS
# treats both alike; what fails open without Redis in auth (the deny-list, cookie sessions, login
# limits) catches this first and answers 503 instead, or saturating the pool would switch those
# checks off (SPEC §8.4 excuses an outage only). redis-py's own type, which the cluster client
# raises for the same condition.
PoolExhausted = MaxConnectionsError

# The app's client: one server or a cluster; both speak the same commands for what the app uses.
KV = Redis | RedisCluster


class PackedConnection(Connection):
    """redis-py's TCP connection, packing commands with hiredis in C.

    redis-py's asyncio connection packs every argument in Python, even with hiredis installed:
    a booking's publish script (≈ 30 arguments) cost ≈ 50 µs to pack, against ≈ 6 µs here
    (issue 11). What hiredis refuses (a bool, None, a bytearray) goes to redis-py's own packer,
    so those raise the same DataError as before.

    A send is also written straight to the transport while its buffer is empty: redis-py wraps
    every write's drain in asyncio.wait_for (a task per command, ≈ 4 % of a booking's CPU) though
    drain only waits once the buffer is full. A send behind unsent data, on a closing transport,
    or due for its health check takes redis-py's way, with its timeout and error handling.
    """

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        writer = self._writer
        if (writer is not None and self._reader is not None and isinstance(command, list)
                and not writer.transport.is_closing() and not writer.transport.get_write_buffer_size()
                and not (check_health and self.health_check_interval
                         and asyncio.get_running_loop().time() > self.next_health_check)):
            writer.writelines(command)
            return
        await super().send_packed_command(command, check_health)

    def pack_command(self, *args: Any) -> list[bytes]:
        # As redis-py: a command name with spaces ("CONFIG GET") is several arguments.
        if isinstance(args[0], str):
            args = (*args[0].encode().split(), *args[1:])
        elif b" " in args[0]:
            args = (*args[0].split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError:
            return super().pack_command(*args)


class WaitingPool(BlockingConnectionPool):
    """redis-py's blocking pool, whose wait for a free connection ends in `PoolExhausted` instead of
    the bare ConnectionError a refused connect also raises.

    A connection that is free while nobody waits is taken directly: the blocking pool's way (a
    condition lock, a timeout scope, maintenance and metrics hooks) cost ≈ 10 µs of every command
    (issue 11), for a wait that only matters once the pool is full. Whenever someone waits, every
    caller queues behind them in the blocking pool's order, so a waiter is never overtaken.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._waiting = 0

    async def get_connection(self, *args: Any, **kwargs: Any) -> AbstractConnection:
        if not self._waiting and not self._in_maintenance and self.can_get_connection():
            connection = self.get_available_connection()
            try:
                await self.ensure_connection(connection)
            except BaseException:
                await self.release(connection)
                raise
            return connection
        self._waiting += 1
        try:
            return await super().get_connection(*args, **kwargs)
        except RedisConnectionError as exc:
            # Only the pool's own wait chains an asyncio timeout; a connect that fails or times out
            # raises its own error (redis' TimeoutError, or a ConnectionError from an OSError).
            if isinstance(exc.__cause__, asyncio.TimeoutError) and not isinstance(exc, PoolExhausted):
                raise PoolExhausted(f"no free Redis connection within {self.timeout} s") from exc
            raise
        finally:
            self._waiting -= 1

    async def release(self, connection: AbstractConnection) -> None:
        if self._waiting:
            await super().release(connection)        # under the condition, waking the next waiter
        else:
            await ConnectionPool.release(self, connection)


def make_redis(url: str, *, cluster: bool = False, pool_size: int = 256, pool_timeout: float = 2.0) -> KV:
    """A client with short timeouts, so a lost Redis degrades requests instead of hanging them.

    The single-server pool blocks: past `pool_size` busy connections a command waits up to
    `pool_timeout` for one to come back, then fails with `PoolExhausted` (a RedisError: 503 where
    Redis is needed, fail-open only where that cannot let a revoked credential or a login past its
    limit through). redis-py's default pool instead refuses the 101st concurrent command at once
    ("Too many connections"); so does the cluster client per node, with the same error type.
    """
    if cluster:
        # require_full_coverage=False: while one shard is down, the others keep serving their slots.
        return RedisCluster.from_url(url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=15,
                                     require_full_coverage=False, max_connections=pool_size)
    pool = WaitingPool.from_url(url, max_connections=pool_size, timeout=pool_timeout,
                              socket_connect_timeout=2, socket_timeout=5, health_check_interval=15)
    if pool.connection_class is Connection:     # TCP; a unix socket or TLS keeps its own class
        pool.connection_class = PackedConnection
    return Redis.from_pool(pool)      # the client owns the pool: aclose() disconnects it


async def get_many(redis: KV, *names: str) -> list[Any]:
    """GET of several keys in one round trip per node: one MGET on a single Redis; on a cluster,
    where an MGET across slots fails with CROSSSLOT, one MGET per slot (redis-py groups them)."""
    if isinstance(redis, RedisCluster):
        return await redis.mget_nonatomic(list(names))
    return await redis.mget(names)


class Script:
    """A Lua script run by EVALSHA, sent whole once if the server does not know it (NOSCRIPT).

    redis-py's Script does the same, plus an isinstance check against a Protocol-derived class
    and an import on every call (≈ 5 µs: a booking's publish runs one, issue 11).
    """

    def __init__(self, redis: KV, text: str) -> None:
        self._redis = redis
        self._script: AsyncScript = redis.register_script(text)
        self.sha: str = self._script.sha

    async def __call__(self, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> Any:
        try:
            return await self._redis.evalsha(self.sha, len(keys), *keys, *args)     # type: ignore[misc]
        except NoScriptError:
            return await self._script(keys=list(keys), args=list(args))          # loads it, runs it


async def run_script_many(redis: KV, script: Script, calls: Sequence[tuple[Sequence[str], Sequence[Any]]],
                          ) -> list[Any]:
    """Run `script` once per (keys, args) in one non-transactional pipeline: one round trip on a
    single Redis, one per node on a cluster. For calls whose order does not matter: a call the
    server refused with NOSCRIPT (its script cache lost) runs again afterwards through `script`,
    which loads it. A call's error is its result; a lost connection raises.

    EVALSHA by hand: redis-py's Script in a pipeline asks SCRIPT EXISTS first (one more round
    trip), and its cluster pipeline's `evalsha()` is refused for no stated reason (redis-py#2914,
    lifted upstream) although EVALSHA is routed by its keys like EVAL.
    """
    async with redis.pipeline(transaction=False) as pipe:
        for names, args in calls:
            pipe.execute_command("EVALSHA", script.sha, len(names), *names, *args)
        results: list[Any] = await pipe.execute(raise_on_error=False)
    for index, result in enumerate(results):
        if isinstance(result, NoScriptError):
            names, args = calls[index]
            try:
                results[index] = await script(keys=names, args=args)
            except REDIS_ERRORS as exc:
                results[index] = exc
    return results


def redis_key(app: web.Application, *parts: str | int) -> str:
    """A Redis key (or pub/sub channel) under this deployment's prefix (REDIS_PREFIX)."""
    return app[keys.CONFIG].redis_prefix + ":".join(str(p) for p in parts)


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open the shared Redis client for the app's lifetime."""
    config = app[keys.CONFIG]
    url = config.redis_url
    if url is None:
        raise RuntimeError("REDIS_URL is not set (run.py starts an embedded Valkey when it is missing)")
    client = make_redis(url, cluster=config.redis_cluster, pool_size=config.redis_pool_size,
                        pool_timeout=config.redis_pool_timeout)
    app[keys.REDIS] = client
    yield
    await client.aclose()
