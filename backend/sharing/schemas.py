"""Bodies of the car-sharing surface (SPEC §4.2): what the public may see of a car."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, RootModel, field_validator

from backend.fleet.schemas import Latitude, Litres, Longitude


class PublicCar(BaseModel):
    """A bookable car without detail: no plate number, no history, no client data."""

    id: int
    brand: str
    model: str
    lat: Latitude | None
    lon: Longitude | None
    fuel_level: Litres | None
    tariff_per_minute: Litres | None


class PublicCarList(RootModel[list[PublicCar]]):
    """GET /api/cars answers a plain JSON array (SPEC §11.11)."""


BBox = tuple[Decimal, Decimal, Decimal, Decimal]


class PublicCarsQuery(BaseModel):
    """`?bbox=min_lon,min_lat,max_lon,max_lat` narrows the list to a map window."""

    bbox: str | None = None

    @field_validator("bbox")
    @classmethod
    def _four_coordinates(cls, value: str | None) -> str | None:
        if value is not None:
            parse_bbox(value)
        return value

    def window(self) -> BBox | None:
        return parse_bbox(self.bbox) if self.bbox is not None else None


def parse_bbox(raw: str) -> BBox:
    """Four comma-separated numbers, longitudes in [-180, 180], latitudes in [-90, 90], min ≤ max."""
    parts = raw.split(",")
    if len(parts) != 4:
        raise ValueError("Ожидается bbox=min_lon,min_lat,max_lon,max_lat.")
    try:
        min_lon, min_lat, max_lon, max_lat = (Decimal(part.strip()) for part in parts)
    except ArithmeticError:
        raise ValueError("Координаты bbox должны быть числами.") from None
    if not all(value.is_finite() for value in (min_lon, min_lat, max_lon, max_lat)):
        raise ValueError("Координаты bbox должны быть числами.")
    if not (-180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
        raise ValueError("bbox вне допустимых границ или min больше max.")
    return min_lon, min_lat, max_lon, max_lat
