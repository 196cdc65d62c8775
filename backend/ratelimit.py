"""Fixed-window counters in Redis, shared by every instance (login failures, CallUp limits)."""

from __future__ import annotations

from redis.asyncio import Redis

from backend.config import Rate
from backend.errors import too_many


async def over_limit(redis: Redis, key: str, rate: Rate) -> int:
    """Seconds to wait when `key` already reached `rate.count` in its window, else 0."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(key)
        pipe.ttl(key)
        count, ttl = await pipe.execute()
    if count is not None and int(count) >= rate.count:
        return ttl if ttl and ttl > 0 else rate.seconds
    return 0


async def hit(redis: Redis, key: str, rate: Rate) -> int:
    """Count one event in `key`'s window (the window starts at the first event); returns the count."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, rate.seconds, nx=True)
        count, _ = await pipe.execute()
    return int(count)


async def refuse_if_over(redis: Redis, keys: list[str], rate: Rate) -> None:
    """429 with Retry-After when any of `keys` is at its limit."""
    wait = 0
    for key in keys:
        wait = max(wait, await over_limit(redis, key, rate))
    if wait:
        raise too_many(wait)
