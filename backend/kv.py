"""The Redis client: its cleanup context and the key prefix every Redis name goes through."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from backend import keys

# What a lost or failing Redis raises through redis-py (connection errors are RedisError subclasses;
# a socket torn down mid-command can surface as a bare OSError).
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError)


def make_redis(url: str) -> Redis:
    """A client with short timeouts, so a lost Redis degrades requests instead of hanging them."""
    return Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=15)


def redis_key(app: web.Application, *parts: str | int) -> str:
    """A Redis key (or pub/sub channel) under this deployment's prefix (REDIS_PREFIX)."""
    return app[keys.CONFIG].redis_prefix + ":".join(str(p) for p in parts)


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open the shared Redis client for the app's lifetime."""
    url = app[keys.CONFIG].redis_url
    if url is None:
        raise RuntimeError("REDIS_URL is not set (run.py starts an embedded Valkey when it is missing)")
    client = make_redis(url)
    app[keys.REDIS] = client
    yield
    await client.aclose()
