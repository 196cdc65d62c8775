"""The Redis client: its cleanup context and the key prefix every Redis name goes through.

With REDIS_CLUSTER the client is a `RedisCluster` (REDIS_URL names any node; the others are
discovered). Every caller stays slot-safe by construction: a script's keys share one hash tag,
several keys of different slots are read with `get_many` (never a bare MGET), and multi-key
DEL and non-transactional pipelines are split per node by the cluster client itself (SPEC §13.1).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.exceptions import RedisError

from backend import keys

# What a lost or failing Redis raises through redis-py (connection errors are RedisError subclasses;
# a socket torn down mid-command can surface as a bare OSError).
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError)

# The app's client: one server or a cluster; both speak the same commands for what the app uses.
KV = Redis | RedisCluster


def make_redis(url: str, *, cluster: bool = False, pool_size: int = 256, pool_timeout: float = 2.0) -> KV:
    """A client with short timeouts, so a lost Redis degrades requests instead of hanging them.

    The single-server pool blocks: past `pool_size` busy connections a command waits up to
    `pool_timeout` for one to come back, then fails with a ConnectionError (a RedisError, so the
    request answers 503 or fails open like any Redis outage). redis-py's default pool instead
    refuses the 101st concurrent command at once ("Too many connections").
    """
    if cluster:
        # require_full_coverage=False: while one shard is down, the others keep serving their slots.
        return RedisCluster.from_url(url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=15,
                                     require_full_coverage=False, max_connections=pool_size)
    pool = BlockingConnectionPool.from_url(url, max_connections=pool_size, timeout=pool_timeout,
                                           socket_connect_timeout=2, socket_timeout=5, health_check_interval=15)
    return Redis.from_pool(pool)      # the client owns the pool: aclose() disconnects it


def is_cluster(redis: KV) -> bool:
    return isinstance(redis, RedisCluster)


async def get_many(redis: KV, *names: str) -> list[Any]:
    """GET of several keys in one round trip per node: one MGET on a single Redis; on a cluster,
    where an MGET across slots fails with CROSSSLOT, one MGET per slot (redis-py groups them)."""
    if isinstance(redis, RedisCluster):
        return await redis.mget_nonatomic(list(names))
    return await redis.mget(names)


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
