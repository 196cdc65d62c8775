"""The real servers behind the test run: one PostgreSQL and one Redis-protocol server.

Embedded (from the wheels) unless TEST_DATABASE_URL / TEST_REDIS_URL point at running ones.
Each test gets its own database, cloned from a migrated template, and its own Redis key prefix.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg

from backend.embedded import EmbeddedPostgres, EmbeddedValkey
from backend.migrations import dsn, migrate


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at database `name`."""
    base, _, query = dsn(url).partition("?")
    base = re.sub(r"/[^/]*$", "", base) if base.count("/") > 2 else base
    return f"{base}/{name}" + (f"?{query}" if query else "")


@dataclass
class Services:
    admin_url: str
    redis_url: str
    template: str = field(default_factory=lambda: f"tmpl_{uuid.uuid4().hex[:10]}")
    created: list[str] = field(default_factory=list)

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
        """A new database with every migration applied (a clone of the template, ~40 ms)."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}" STRATEGY FILE_COPY')
        finally:
            await conn.close()
        self.created.append(name)
        return with_database(self.admin_url, name)

    async def drop(self, name: str) -> None:
        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    async def drop_all(self) -> None:
        for name in [*self.created, self.template]:
            await self.drop(name)


class EmbeddedServers:
    """The embedded servers of one test session, in a temporary directory."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="backend-tests-"))
        self.postgres: EmbeddedPostgres | None = None
        self.valkey: EmbeddedValkey | None = None

    def start(self) -> tuple[str, str]:
        pg_url = os.environ.get("TEST_DATABASE_URL")
        redis_url = os.environ.get("TEST_REDIS_URL")
        if not pg_url:
            self.postgres = EmbeddedPostgres(self.root / "pg", fsync=False)
            pg_url = self.postgres.start()
        if not redis_url:
            self.valkey = EmbeddedValkey(self.root / "valkey", persist=False)
            redis_url = self.valkey.start()
        return pg_url, redis_url

    def stop(self) -> None:
        if self.valkey:
            self.valkey.stop()
        if self.postgres:
            self.postgres.stop()
        import shutil

        shutil.rmtree(self.root, ignore_errors=True)


async def wait_ready(port: int, proc: subprocess.Popen[bytes], limit: float = 60) -> dict:
    """Poll /health/ready of a started run.py (bounded); its body once it answers 200."""
    deadline = time.monotonic() + limit
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"run.py exited with {proc.returncode}")
            try:
                async with session.get(f"http://127.0.0.1:{port}/health/ready") as resp:
                    if resp.status == 200:
                        return await resp.json()
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("run.py did not become ready")
