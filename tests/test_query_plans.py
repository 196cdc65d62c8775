"""Statements that filter on a status read the partial index that names it (backend.db.constant).

asyncpg prepares every statement, and after five executions PostgreSQL may run a prepared
statement's generic plan, which knows nothing of a bound `$2`: with the status bound, a
reservation's active-booking check scanned every booking, and the sweepers the whole table, on
every run. Each test takes the generic plan with sequential scans discouraged, so a partial index
shows up exactly when the planner may use it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import select

from backend.callup.orders import expired, stuck
from backend.callup.tables import orders
from backend.config import Config
from backend.db import Statement, compiled
from backend.sharing.bookings import due_reservations
from backend.sharing.claims import RESERVE

BOOKING_INDEXES = ("bookings_active_user_key", "bookings_active_car_key", "bookings_reserved_until_idx")
ORDER_INDEXES = ("call_orders_expiry_idx", "call_orders_calling_idx")


@pytest.fixture
async def conn(config: Config) -> AsyncIterator[asyncpg.Connection]:
    assert config.database_url is not None
    connection = await asyncpg.connect(config.database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        yield connection
    finally:
        await connection.close()


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, dt.timedelta):
        return f"interval '{value.total_seconds()} seconds'"
    return str(int(value))


async def generic_plan(conn: asyncpg.Connection, statement: Statement, **values: Any) -> str:
    """EXPLAIN of the generic plan of `statement` run with `values`."""
    name = f"plan_{uuid.uuid4().hex[:8]}"
    await conn.execute("SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off")
    await conn.execute(f"PREPARE {name} AS {statement.sql}")
    arguments = ", ".join(_literal(value) for value in statement.args(**values))
    execute = f"EXECUTE {name}({arguments})" if arguments else f"EXECUTE {name}"
    return "\n".join(row[0] for row in await conn.fetch(f"EXPLAIN {execute}"))


async def test_a_reservation_checks_active_bookings_on_their_partial_index(conn: asyncpg.Connection) -> None:
    plan = await generic_plan(conn, RESERVE, user_id=1, car_id=1, ttl=dt.timedelta(seconds=900))
    assert "Seq Scan on bookings" not in plan, plan
    assert any(index in plan for index in BOOKING_INDEXES), plan


async def test_the_reservation_sweeper_reads_only_reservations(conn: asyncpg.Connection) -> None:
    plan = await generic_plan(conn, compiled(due_reservations(100)))
    assert any(index in plan for index in BOOKING_INDEXES), plan


@pytest.mark.parametrize("predicate", [expired(), stuck(30.0)], ids=["expired", "stuck"])
async def test_the_call_order_sweepers_read_only_live_orders(conn: asyncpg.Connection, predicate: Any) -> None:
    plan = await generic_plan(conn, compiled(select(orders.c.id).where(predicate).order_by(orders.c.updated_at)))
    assert any(index in plan for index in ORDER_INDEXES), plan
