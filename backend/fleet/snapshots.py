"""Odometer/fuel snapshots and the car lock that orders every write to a car's chain."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.fleet.computations import Start
from backend.fleet.kinds import Kind


async def lock_car(conn: AsyncConnection, kind: Kind, car_id: int) -> bool:
    """Lock the car row until the transaction ends; serializes chain writes across instances.

    FOR NO KEY UPDATE conflicts with itself (and with FOR UPDATE) but not with the KEY SHARE
    locks that foreign-key checks take, so inserting a norm for the car never waits. Issuing a
    waybill takes this lock on purpose: it reads the chain (issuance.py). Returns whether the car
    exists and is not deleted.
    """
    deleted = (await conn.execute(car_lock(kind, car_id))).one_or_none()
    return deleted is not None and deleted.deleted_at is None


def car_lock(kind: Kind, car_id: int | ColumnElement[Any]) -> Select[Any]:
    """The statement of `lock_car`: the car's id and deleted_at, its row locked FOR NO KEY UPDATE.

    `car_id` may be an expression (statements.py locks the car of a waybill in the statement that reads it).
    """
    cars = kind.cars
    return select(cars.c.id, cars.c.deleted_at).where(cars.c.id == car_id).with_for_update(key_share=True)


async def lock_cars(conn: AsyncConnection, kind: Kind, car_ids: Iterable[int]) -> None:
    """Lock several cars in one statement, in id order (the global order every multi-car writer keeps).

    Two writers that each need the same two cars (a waybill moved A → B while another moves B → A)
    would otherwise each hold one and wait for the other until PostgreSQL aborts one (40P01, a 500).
    The sort sits below the row locks in the plan, so the rows are locked in `ORDER BY` order.
    """
    cars = kind.cars
    wanted = sorted(set(car_ids))
    if wanted:
        await conn.execute(select(cars.c.id).where(cars.c.id.in_(wanted)).order_by(cars.c.id)
                           .with_for_update(key_share=True))


async def last_snapshot(conn: AsyncConnection, kind: Kind, car_id: int,
                        before_id: int | None = None) -> Mapping[str, Any] | None:
    """The car's live snapshot with the greatest id (below `before_id` when given)."""
    return (await conn.execute(last_snapshot_query(kind, car_id, before_id))).mappings().one_or_none()


def last_snapshot_query(kind: Kind, car_id: int | ColumnElement[Any], before_id: int | None = None) -> Select[Any]:
    """The statement of `last_snapshot`; `car_id` may be a correlated column (statements.py)."""
    s = kind.snapshots
    query = select(s).where(s.c.car_id == car_id, s.c.deleted_at.is_(None))
    if before_id is not None:
        query = query.where(s.c.id < before_id)
    return query.order_by(s.c.id.desc()).limit(1)


async def start_before(conn: AsyncConnection, kind: Kind, car_id: int, before_id: int | None = None) -> Start | None:
    """Where a trip starts that comes right before snapshot `before_id` (or after the last one)."""
    row = await last_snapshot(conn, kind, car_id, before_id)
    return None if row is None else Start(row["odometer"], row["fuel"])
