"""The Redis pool's shortcut (backend.kv.WaitingPool): a free connection is taken directly, yet a
full pool still queues every caller and wakes each waiter, against a real Valkey."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
from redis.asyncio import Redis
from redis.exceptions import DataError

from backend.config import Config
from backend.kv import PackedConnection, PoolExhausted, Script, WaitingPool, make_redis

SmallPool = Callable[[int, float], AbstractAsyncContextManager[tuple[Redis, WaitingPool]]]


def connections(pool: WaitingPool) -> int:
    return len(pool._available_connections) + len(pool._in_use_connections)


@pytest.fixture
def small_pool(config: Config) -> SmallPool:
    """A client of the test's Valkey whose pool holds `size` connections and waits `wait` s for one."""
    @asynccontextmanager
    async def open_pool(size: int, wait: float) -> AsyncIterator[tuple[Redis, WaitingPool]]:
        assert config.redis_url is not None
        redis = make_redis(config.redis_url, pool_size=size, pool_timeout=wait)
        assert isinstance(redis, Redis) and isinstance(redis.connection_pool, WaitingPool)
        try:
            yield redis, redis.connection_pool
        finally:
            await redis.aclose()
    return open_pool


async def test_a_crowd_on_a_small_pool_is_served_whole_and_never_opens_more(small_pool: SmallPool) -> None:
    async with small_pool(3, 5) as (redis, pool):
        await redis.set("crowd", "here", ex=60)
        answers = await asyncio.gather(*(redis.get("crowd") for _ in range(300)))
        assert answers == [b"here"] * 300
        assert connections(pool) <= 3


async def test_waiters_on_a_full_pool_are_all_woken_as_connections_come_back(small_pool: SmallPool) -> None:
    async with small_pool(2, 5) as (redis, pool):
        held = [await pool.get_connection(), await pool.get_connection()]
        waiting = [asyncio.ensure_future(redis.ping()) for _ in range(10)]
        await asyncio.sleep(0.2)
        assert not any(task.done() for task in waiting)       # the pool is full: all of them wait
        for connection in held:
            await pool.release(connection)
        assert await asyncio.wait_for(asyncio.gather(*waiting), 5) == [True] * 10
        assert await redis.ping()                            # and the shortcut works again afterwards
        assert connections(pool) <= 2


async def test_a_wait_longer_than_the_timeout_is_pool_exhausted(small_pool: SmallPool) -> None:
    async with small_pool(1, 0.1) as (redis, pool):
        held = await pool.get_connection()
        with pytest.raises(PoolExhausted):
            await redis.ping()
        await pool.release(held)
        assert await redis.ping()


async def test_commands_packed_in_c_reach_redis_as_redis_py_would_send_them(small_pool: SmallPool) -> None:
    """PackedConnection: every kind of argument arrives intact; what redis-py refuses still raises DataError."""
    async with small_pool(2, 1) as (redis, pool):
        assert pool.connection_class is PackedConnection
        values = {"text": "ü ☃ text", "raw": b"\x00\xffbytes", "int": 12, "float": 0.1, "view": memoryview(b"view"),
                  "array": bytearray(b"array")}
        for name, value in values.items():
            await redis.set(f"packed:{name}", value, ex=60)
        got = await redis.mget([f"packed:{name}" for name in values])
        assert got == ["ü ☃ text".encode(), b"\x00\xffbytes", b"12", b"0.1", b"view", b"array"]
        # A command name with a space is two arguments, as redis-py sends it.
        assert "maxmemory-policy" in await redis.execute_command("CONFIG GET", "maxmemory-policy")
        for refused in (True, None):
            with pytest.raises(DataError):
                await redis.set("packed:refused", refused)      # type: ignore[arg-type]
        assert await redis.exists("packed:refused") == 0
        assert await redis.eval("return #ARGV", 0, *range(40)) == 40


async def test_a_script_runs_again_after_the_server_lost_its_script_cache(small_pool: SmallPool) -> None:
    async with small_pool(2, 1) as (redis, _):
        script = Script(redis, "return {KEYS[1], ARGV[1], #ARGV}")
        assert await script(keys=["k"], args=["a", 2]) == [b"k", b"a", 2]
        await redis.script_flush()                      # a restart or SCRIPT FLUSH: NOSCRIPT next time
        assert await script(keys=["k2"], args=["b"]) == [b"k2", b"b", 1]
        assert await script(keys=["x"]) == [b"x"]                # no ARGV: the table stops at the nil
