"""The real servers behind the test run: one PostgreSQL and one Redis-protocol server.

Embedded (from the wheels) unless TEST_DATABASE_URL / TEST_REDIS_URL point at running ones.
Each test gets its own database, cloned from a migrated template, and its own Redis key prefix.
The session's databases are never dropped one by one while it runs: an embedded server is thrown
away whole at the end, an external one gets them dropped at once over a few connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from backend.embedded import EmbeddedPostgres, EmbeddedValkey
from backend.migrations import dsn, migrate
from tests.support import eventually

# Connections that drop an external server's databases at the end of the session. DROP DATABASE
# waits for a checkpoint; drops running together share one, so a handful of connections cuts the
# wait by as much without crowding a server other clients may be using.
DROP_CONNECTIONS = 8


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at database `name`."""
    base, _, query = dsn(url).partition("?")
    base = re.sub(r"/[^/]*$", "", base) if base.count("/") > 2 else base
    return f"{base}/{name}" + (f"?{query}" if query else "")


@dataclass
class Services:
    """Creates the session's databases on one PostgreSQL server and removes them at its end."""

    admin_url: str
    redis_url: str
    # True when the server is the session's own and goes away with it (EmbeddedServers): then there
    # is nothing to drop, and dropping ~500 databases one by one used to take a third of the run.
    disposable: bool = False
    template: str = field(default_factory=lambda: f"tmpl_{uuid.uuid4().hex[:10]}")
    created: list[str] = field(default_factory=list)
    # The clone the next test will get, made while the current test runs (see fresh_database).
    _next: asyncio.Task[str] | None = field(default=None, init=False, repr=False)
    # Databases of finished tests, dropped one after another by _dropper (see discard).
    _doomed: asyncio.Queue[str] | None = field(default=None, init=False, repr=False)
    _dropper: asyncio.Task[None] | None = field(default=None, init=False, repr=False)

    async def prepare_template(self) -> None:
        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{self.template}"')
        finally:
            await conn.close()
        await migrate(with_database(self.admin_url, self.template))

    async def empty_database(self, prefix: str) -> str:
        """A new database with no migration applied (migration tests run them themselves)."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        self.created.append(name)
        return with_database(self.admin_url, name)

    async def fresh_database(self) -> str:
        """A new database with every migration applied: a clone of the template.

        A clone costs ~40 ms on an idle server and ~100 ms once tests have dirtied it (FILE_COPY
        checkpoints before and after copying), about a quarter of a test's setup. So each call also
        starts the next clone in the background, where it overlaps the running test, and takes the
        one the previous call started.
        """
        loop = asyncio.get_running_loop()
        ready = self._next
        if ready is not None and ready.get_loop() is not loop:   # a test on an event loop of its own
            return with_database(self.admin_url, await self._clone())
        if ready is None:
            ready = loop.create_task(self._clone())
        self._next = loop.create_task(self._clone())
        return with_database(self.admin_url, await ready)

    async def _clone(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        self.created.append(name)     # before CREATE: dropped even if the session ends while it runs
        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}" STRATEGY FILE_COPY')
        finally:
            await conn.close()
        return name

    def discard(self, url: str) -> None:
        """Drop a finished test's database soon, in the background; the test does not wait for it.

        The server runs with fsync off, so a clone dropped within seconds has its files unlinked
        while they are still only in the page cache: the kernel never writes them to disk. Kept to
        the end of the session, ~550 clones (~5 GB) were written back and then deleted, which cost
        ~25 s at the end of the run whether by DROP DATABASE or by removing the data directory.
        """
        name = dsn(url).partition("?")[0].rsplit("/", 1)[-1]
        loop = asyncio.get_running_loop()
        if self._dropper is None:
            self._doomed = asyncio.Queue()
            self._dropper = loop.create_task(self._drop_doomed(self._doomed))
        elif self._dropper.get_loop() is not loop:
            return                     # a test on an event loop of its own: drop_all() takes it
        assert self._doomed is not None
        self._doomed.put_nowait(name)

    async def _drop_doomed(self, doomed: asyncio.Queue[str]) -> None:
        """Drop the queued databases one at a time (each drop waits for a checkpoint; one at a
        time keeps that from crowding the running test)."""
        conn = await asyncpg.connect(self.admin_url)
        try:
            while True:
                name = await doomed.get()
                try:
                    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                    self.created.remove(name)
                except (asyncpg.PostgresError, ValueError):
                    pass               # still listed in `created`: drop_all() tries it again
                finally:
                    doomed.task_done()
        finally:
            await conn.close()

    async def close(self) -> None:
        """Let the clone made ahead finish (never cancel a CREATE DATABASE half-way) and the
        background drops catch up; what is left is drop_all()'s."""
        loop = asyncio.get_running_loop()
        ready, self._next = self._next, None
        if ready is not None and ready.get_loop() is loop:
            await asyncio.wait({ready})
            if not ready.cancelled():
                ready.exception()     # retrieved: a failed spare clone matters to no test
        dropper, doomed, self._dropper, self._doomed = self._dropper, self._doomed, None, None
        if dropper is not None and doomed is not None and dropper.get_loop() is loop:
            if not dropper.done():
                await asyncio.wait({asyncio.ensure_future(doomed.join()), dropper},
                                   return_when=asyncio.FIRST_COMPLETED)
            dropper.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError, asyncpg.PostgresError):
                await dropper

    async def drop_all(self, connections: int = DROP_CONNECTIONS) -> None:
        """Drop every database of the session, unless the whole server is about to be discarded.

        Each DROP DATABASE waits for a checkpoint of the whole server; concurrent drops share the
        checkpoints, so `connections` workers take names from one iterator instead of dropping in a row.
        """
        names = [*self.created, self.template]
        self.created.clear()
        if self.disposable:
            return
        pending = iter(names)         # shared by the workers: each name is taken once

        async def worker() -> None:
            conn = await asyncpg.connect(self.admin_url)
            try:
                for name in pending:
                    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()

        await asyncio.gather(*(worker() for _ in range(max(1, min(connections, len(names))))))


class EmbeddedServers:
    """The servers of one test session: embedded ones in a temporary directory, unless
    TEST_DATABASE_URL / TEST_REDIS_URL name running ones (which are used, never stopped)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="backend-tests-"))
        self.postgres: EmbeddedPostgres | None = None
        self.valkey: EmbeddedValkey | None = None
        self.pg_url = ""
        self.redis_url = ""

    @property
    def owns_postgres(self) -> bool:
        """Whether PostgreSQL is this session's own, deleted with its data on stop()."""
        return self.postgres is not None

    def start(self) -> tuple[str, str]:
        """Start what the environment does not provide; the (PostgreSQL, Redis) URLs."""
        self.pg_url = os.environ.get("TEST_DATABASE_URL", "")
        self.redis_url = os.environ.get("TEST_REDIS_URL", "")
        if not self.pg_url:
            self.postgres = EmbeddedPostgres(self.root / "pg", fsync=False)
            self.pg_url = self.postgres.start()
        if not self.redis_url:
            self.valkey = EmbeddedValkey(self.root / "valkey", persist=False)
            self.redis_url = self.valkey.start()
        return self.pg_url, self.redis_url

    def stop(self) -> None:
        if self.valkey:
            self.valkey.stop()
        if self.postgres:
            # Immediate shutdown (SIGQUIT): the data are deleted next, so the shutdown checkpoint of
            # a fast shutdown would only write hundreds of databases' dirty pages for nothing.
            process = self.postgres.process
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGQUIT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(10)
            self.postgres.stop()       # a no-op once it exited; kills it otherwise
        shutil.rmtree(self.root, ignore_errors=True)


async def wait_ready(port: int, proc: subprocess.Popen[bytes], limit: float = 60) -> dict:
    """Poll /health/ready of a started run.py (bounded); its body once it answers 200."""
    async with aiohttp.ClientSession() as session:
        async def ready() -> dict:
            if proc.poll() is not None:      # not retried: an exited process will not become ready
                pytest.fail(f"run.py exited with {proc.returncode}")
            try:
                async with session.get(f"http://127.0.0.1:{port}/health/ready") as resp:
                    assert resp.status == 200, f"run.py did not become ready: /health/ready is {resp.status}"
                    return await resp.json()
            except aiohttp.ClientError as error:
                raise AssertionError(f"run.py did not become ready: {error!r}") from error

        return await eventually(ready, timeout=limit, interval=0.2)
