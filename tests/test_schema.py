"""The SQLAlchemy tables and the migrated database agree (columns, types, nullability)."""

from __future__ import annotations

import asyncio

import asyncpg
from sqlalchemy.dialects import postgresql

import backend.tables  # noqa: F401  (fills the metadata)
from backend.config import Config
from backend.db import metadata
from backend.migrations import dsn, migrate
from tests.services import Services

# information_schema.data_type as Postgres reports it, for each compiled SQLAlchemy type.
PG_NAMES = {"BIGINT": "bigint", "INTEGER": "integer", "SMALLINT": "smallint", "TEXT": "text",
            "BOOLEAN": "boolean", "TIMESTAMP WITH TIME ZONE": "timestamp with time zone", "DATE": "date",
            "TIME WITHOUT TIME ZONE": "time without time zone", "UUID": "uuid", "BYTEA": "bytea",
            "JSONB": "jsonb", "DOUBLE PRECISION": "double precision", "TIME": "time without time zone",
            "TIMESTAMP WITHOUT TIME ZONE": "timestamp without time zone"}


def expected_type(column) -> str:
    compiled = column.type.compile(dialect=postgresql.dialect())
    if compiled.startswith("NUMERIC"):
        return compiled.lower().replace(" ", "")
    if compiled.startswith("VARCHAR"):
        return "character varying"
    return PG_NAMES.get(compiled, compiled.lower())


async def test_tables_match_migrated_schema(config: Config) -> None:
    assert config.database_url
    conn = await asyncpg.connect(dsn(config.database_url))
    try:
        rows = await conn.fetch(
            "SELECT table_name, column_name, data_type, is_nullable, numeric_precision, numeric_scale"
            " FROM information_schema.columns WHERE table_schema = 'public'")
    finally:
        await conn.close()
    actual: dict[str, dict[str, tuple[str, bool]]] = {}
    for row in rows:
        kind = row["data_type"]
        if kind == "numeric":
            kind = f"numeric({row['numeric_precision']},{row['numeric_scale']})"
        actual.setdefault(row["table_name"], {})[row["column_name"]] = (kind, row["is_nullable"] == "YES")
    actual.pop("schema_migrations", None)
    assert set(actual) == set(metadata.tables), "tables differ between sql/ and backend tables.py"
    for name, table in metadata.tables.items():
        expected = {c.name: (expected_type(c), bool(c.nullable) and not c.primary_key) for c in table.columns}
        assert actual[name] == expected, f"table {name} differs"


async def test_migrations_are_idempotent_and_safe_concurrently(services: Services) -> None:
    url = await services.fresh_database()
    # Already migrated (template): nothing to apply, twice, even from three racers at once.
    results = await asyncio.gather(migrate(url), migrate(url), migrate(url))
    assert results == [[], [], []]


async def test_concurrent_first_migration_applies_each_file_once(services: Services) -> None:
    url = await services.empty_database("t_race")
    results = await asyncio.gather(*(migrate(url) for _ in range(4)))
    applied = [r for r in results if r]
    assert len(applied) == 1, results
    db = await asyncpg.connect(dsn(url))
    try:
        versions = await db.fetch("SELECT version FROM schema_migrations ORDER BY version")
    finally:
        await db.close()
    assert len(versions) == len(applied[0])
