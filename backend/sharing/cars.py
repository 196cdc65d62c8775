"""Queries of the car-sharing columns of passenger cars (SPEC §4.2).

The `passenger_cars` table is declared by fleet (one table for §4 and §5); the sharing columns
(shared, state, location, fuel level, tariff) and their rules belong to this domain.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import RowMapping, Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend.db import read
from backend.errors import not_found
from backend.fleet.tables import passenger_cars as cars
from backend.sharing.schemas import BBox, public_views

PUBLIC_COLUMNS = (cars.c.id, cars.c.brand, cars.c.model, cars.c.lat, cars.c.lon, cars.c.fuel_level,
                  cars.c.tariff_per_minute)


def free() -> Any:
    """The condition of a bookable car: shared, available and not deleted."""
    return cars.c.shared.is_(True) & (cars.c.state == "available") & cars.c.deleted_at.is_(None)


def bookable() -> Select[Any]:
    """Free cars, public columns only."""
    return select(*PUBLIC_COLUMNS).where(free())


_FREE_CARS = bookable().order_by(cars.c.id)      # built once: the `cars` snapshot of every subscriber


async def available_cars(conn: AsyncConnection, window: BBox | None = None) -> list[dict[str, Any]]:
    """The public view of every free car, inside `window` when given, ordered by id."""
    query = _FREE_CARS
    if window is not None:
        min_lon, min_lat, max_lon, max_lat = window
        query = query.where(cars.c.lon.between(min_lon, max_lon), cars.c.lat.between(min_lat, max_lat))
    rows = (await conn.execute(query)).mappings()
    return public_views(rows)


async def lock(conn: AsyncConnection, car_id: int) -> RowMapping:
    """The live car locked FOR UPDATE, or 404."""
    query = select(cars).where(cars.c.id == car_id, cars.c.deleted_at.is_(None)).with_for_update()
    row = (await conn.execute(query)).mappings().one_or_none()
    if row is None:
        raise not_found()
    return row


async def move(conn: AsyncConnection, car_id: int, state: str, **values: Any) -> tuple[RowMapping, RowMapping]:
    """Set the state (and location/fuel `values`) of a car; returns the row before and after.

    Callers hold the booking's lock first: bookings → car is the one lock order of this domain.
    """
    before = (await conn.execute(select(cars).where(cars.c.id == car_id).with_for_update())).mappings().one()
    stamps = {"state_changed_at": func.now()} if before["state"] != state else {}
    after = (await conn.execute(update(cars).where(cars.c.id == car_id)
                                .values(state=state, updated_at=func.now(), **stamps, **values)
                                .returning(*cars.c))).mappings().one()
    return before, after


async def cars_snapshot(db: AsyncEngine, rest: str) -> list[dict[str, Any]]:
    """What a new `cars` subscriber starts from, so it needs no REST call (SPEC §8.2)."""
    async with read(db, lag_ok=True) as conn:
        return await available_cars(conn)
