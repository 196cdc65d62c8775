"""Schema migrations: sql/NNN_description.sql applied in order, once, under an advisory lock."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

log = logging.getLogger("backend.migrations")

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
# Any constant works; it only has to be the same for every instance of this service.
LOCK_KEY = 0x5EED_0001


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    path: Path


def discover(sql_dir: Path = SQL_DIR) -> list[Migration]:
    """Every migration file, ordered by version; a malformed or duplicate name is an error."""
    found: dict[int, Migration] = {}
    for path in sorted(sql_dir.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise ValueError(f"migration file {path.name} is not named NNN_description.sql")
        version = int(match.group(1))
        if version in found:
            raise ValueError(f"two migrations with version {version:03d}")
        found[version] = Migration(version, match.group(2), path)
    return [found[v] for v in sorted(found)]


def dsn(url: str) -> str:
    """asyncpg wants a plain postgresql:// URL."""
    return re.sub(r"^postgres(ql)?(\+asyncpg)?://", "postgresql://", url)


async def migrate(url: str, sql_dir: Path = SQL_DIR) -> list[str]:
    """Apply pending migrations; safe to run twice and from several processes at once."""
    conn = await asyncpg.connect(dsn(url))
    applied_now: list[str] = []
    try:
        # Session-level lock: a second instance waits here until the first has finished, then
        # sees every version recorded and applies nothing.
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())")
            done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
            for migration in discover(sql_dir):
                if migration.version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(migration.path.read_text(encoding="utf-8"))
                    await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                                       migration.version, migration.name)
                applied_now.append(migration.path.name)
                log.info("applied migration %s", migration.path.name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    finally:
        await conn.close()
    return applied_now
