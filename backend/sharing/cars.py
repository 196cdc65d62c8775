"""Queries of the car-sharing columns of passenger cars (SPEC §4.2).

The `passenger_cars` table is declared by fleet (one table for §4 and §5); the sharing columns
(shared, state, location, fuel level, tariff) and their rules belong to this domain.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend.auth.principal import Principal
from backend.db import read
from backend.fleet.tables import passenger_cars as cars
from backend.sharing.schemas import BBox, PublicCar

PUBLIC_COLUMNS = (cars.c.id, cars.c.brand, cars.c.model, cars.c.lat, cars.c.lon, cars.c.fuel_level,
                  cars.c.tariff_per_minute)


def bookable() -> Select[Any]:
    """Free cars: shared, available and not deleted."""
    return select(*PUBLIC_COLUMNS).where(cars.c.shared.is_(True), cars.c.state == "available",
                                         cars.c.deleted_at.is_(None))


async def available_cars(conn: AsyncConnection, window: BBox | None = None) -> list[dict[str, Any]]:
    """The public view of every free car, inside `window` when given, ordered by id."""
    query = bookable()
    if window is not None:
        min_lon, min_lat, max_lon, max_lat = window
        query = query.where(cars.c.lon.between(min_lon, max_lon), cars.c.lat.between(min_lat, max_lat))
    rows = (await conn.execute(query.order_by(cars.c.id))).mappings()
    return [PublicCar.model_validate(dict(row)).model_dump(mode="json") for row in rows]


async def anyone(db: AsyncEngine, principal: Principal | None, rest: str) -> bool:
    """`cars` is public (SPEC §8.3); it has no sub-channels."""
    return rest == ""


async def cars_snapshot(db: AsyncEngine, rest: str) -> list[dict[str, Any]]:
    """What a new `cars` subscriber starts from, so it needs no REST call (SPEC §8.2)."""
    async with read(db) as conn:
        return await available_cars(conn)
