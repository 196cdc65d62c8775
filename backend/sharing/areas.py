"""Free cars by area (SPEC §13.3): `cars:{tile}` channels, tile = geohash of precision 5.

A booking app subscribes to the few tiles of its map view instead of the whole city's `cars`; the
whole-city channel stays for small deployments and the dashboard. Every piece of `cars` news is
said again on the tile of the car, and a free car that crosses a tile edge leaves the old tile
(`car.unavailable` there) and enters the new one (`car.available`). A free car without coordinates
is on `cars` only: it is on no map.

One rule decides where a car is: `tile_of`, exact on tile edges (geohash.py). The tile snapshot and
the events use it; GET /api/cars?bbox= is a closed box, which is exactly what the tiles covering the
box hold once filtered by the box.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncEngine

from backend.db import read
from backend.principal import Principal
from backend.sharing import geohash
from backend.sharing.cars import available_cars, cars_snapshot
from backend.sharing.const import CARS

TILE_PRECISION: Final = 5          # ≈ 4.9 × 4.9 km at the equator: a city map shows a handful
# '<rest>' of `cars:<rest>`: a tile, or nothing (the bare `cars`). Upper case is refused, like any
# other spelling geohash.encode never produces: one tile, one channel name.
TILE_REST: Final = f"(?:{geohash.PATTERN}{{{TILE_PRECISION}}})?"

News = tuple[str, str, Any]         # channel, event, data


def tile_channel(tile: str) -> str:
    """cars:{tile}."""
    return f"{CARS}:{tile}"


def tile_of(car: Mapping[str, Any]) -> str | None:
    """The tile a car is on, or None when it has no coordinates."""
    lat, lon = car["lat"], car["lon"]
    if lat is None or lon is None:
        return None
    return geohash.encode(lat, lon, TILE_PRECISION)


def area_news(after: Mapping[str, Any], before: Mapping[str, Any] | None, now_free: bool,
              was_free: bool | None, city: tuple[str, Any] | None) -> list[News]:
    """The whole city's news (`city`: event and data on `cars`) said on the tile channels.

    `was_free` is None when the car's earlier state is unknown (a new car); its tile is then taken
    from `after`, the only position known.
    """
    if city is None:
        return []
    event, data = city
    old = tile_of(before if before is not None else after) if was_free is not False else None
    new = tile_of(after) if now_free else None
    if event == "car.unavailable":
        return [(tile_channel(old), event, data)] if old else []
    if event == "car.moved" and old != new:
        # Crossing an edge: the old tile's subscribers drop it, the new tile's get the whole car.
        news = [(tile_channel(old), "car.unavailable", {"id": after["id"]})] if old else []
        return news + ([(tile_channel(new), "car.available", data)] if new else [])
    return [(tile_channel(new), event, data)] if new else []      # an entry, an upsert, a move inside


async def anyone(db: AsyncEngine, principal: Principal | None, rest: str) -> bool:
    """`cars` and every `cars:{tile}` are public (SPEC §8.3); the registry has checked the name."""
    return True


async def snapshot(db: AsyncEngine, rest: str) -> list[dict[str, Any]]:
    """The free cars of the whole city (`cars`) or of one tile (`cars:{tile}`), ordered by id."""
    if not rest:
        return await cars_snapshot(db, rest)
    south, west, north, east = (_decimal(edge) for edge in geohash.bounds(rest))
    # The closed box of the tile narrows the scan; tile_of then drops the cars on its north and
    # east edges, which belong to the neighbours.
    async with read(db, lag_ok=True) as conn:       # like the `cars` snapshot: the replica may serve it
        found = await available_cars(conn, (west, south, east, north))
    return [car for car in found if tile_of(car) == rest]


def _decimal(edge: Fraction) -> Decimal:
    # Tile edges are multiples of 180 / 2^k: finite decimals, exact within Decimal's 28 digits.
    return Decimal(edge.numerator) / Decimal(edge.denominator)
