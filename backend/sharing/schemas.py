"""Bodies of the car-sharing surface (SPEC §4.2–4.4): public cars, bookings, the operator views."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, PlainSerializer, RootModel, field_validator

from backend.api.pagination import ListQuery, Page
from backend.api.types import Id, q3
from backend.api.views import RowView
from backend.auth.schemas import ProfileOut
from backend.fleet.schemas import Latitude, Litres, Longitude, PassengerCarOut


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

    bbox: str | None = Field(
        None, examples=["82.85,54.97,83.0,55.07"],
        description="min_lon,min_lat,max_lon,max_lat (GeoJSON order, degrees): the free cars inside "
                    "this closed box — the cars of the `cars:{geohash5}` tiles covering it, filtered by it")

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


# ---- bookings (SPEC §4.3) ------------------------------------------------------------------------

Ref = Id        # the one integer rule of every surface (backend.api.types)
# Output only: a cost can outgrow the input bounds of Amount (many minutes × a high tariff).
Money = Annotated[Decimal, PlainSerializer(lambda d: f"{q3(d):.3f}", return_type=str, when_used="json")]
BookingStatus = Literal["reserved", "in_trip", "finished", "cancelled", "expired"]
CarState = Literal["available", "reserved", "in_trip", "maintenance"]


class BookingIn(BaseModel):
    """POST /api/bookings: the car to reserve."""

    car: Ref


class FinishIn(BaseModel):
    """POST /api/bookings/{id}/finish: where the car was left and with how much fuel."""

    lat: Latitude
    lon: Longitude
    fuel_level: Litres


class BookingOut(BaseModel):
    """A booking as its owner and operators see it."""

    id: int
    car: int
    user: int
    status: BookingStatus
    tariff_per_minute: Money
    reserved_until: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    duration_s: int | None
    cost: Money | None
    start_lat: Latitude | None
    start_lon: Longitude | None
    start_fuel_level: Litres | None
    end_lat: Latitude | None
    end_lon: Longitude | None
    end_fuel_level: Litres | None
    created_at: dt.datetime
    updated_at: dt.datetime


class BookingsQuery(ListQuery):
    """GET /api/bookings filters; `user` narrows only an operator's view (others see their own)."""

    status: BookingStatus | None = None
    user: Ref | None = None
    car: Ref | None = None


# ---- operator view of cars (SPEC §4.2, §11.15) -----------------------------------------------------

class ClientBrief(BaseModel):
    """Who holds a car; the phone only for client operators and dashboard viewers."""

    id: int
    login: str
    name: str
    surname: str
    last_name: str
    phone: str | None


class OperatorCarOut(PassengerCarOut):
    """Every field of a car, its active booking and that booking's client."""

    booking: BookingOut | None
    client: ClientBrief | None


class OperatorCarsQuery(ListQuery):
    """GET /api/operator/cars filters."""

    state: CarState | None = None


class CarStateIn(BaseModel):
    """POST /api/operator/cars/{id}/state: the two states an operator may set (SPEC §11.12)."""

    state: Literal["maintenance", "available"]


# ---- client management (SPEC §4.4, §11.13) ---------------------------------------------------------

class ClientsQuery(ListQuery):
    """GET /api/clients: users of role `client` unless `role` (a name or an id) says otherwise."""

    status: Literal["pending", "approved", "blocked"] | None = None
    role: Annotated[str, Field(min_length=1, max_length=150)] = "client"


class BlockIn(BaseModel):
    """POST /api/clients/{id}/block."""

    reason: Annotated[str, Field(min_length=1, max_length=1000)]


class ClientOut(ProfileOut):
    """The /api/users/ row plus why the user is blocked."""

    blocked_reason: str | None


# Named pages: OpenAPI component names may not contain the brackets of Page[BookingOut].
class BookingPage(Page[BookingOut]):
    """A page of bookings."""


class OperatorCarPage(Page[OperatorCarOut]):
    """A page of the operators' car view."""


class ClientPage(Page[ClientOut]):
    """A page of clients."""


def booking_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """A bookings row under its API names (car_id/user_id become car/user)."""
    return {**row, "car": row["car_id"], "user": row["user_id"]}


# Rows of our own tables, shown without being validated again (backend.api.views).
_BOOKING, _CLIENT = RowView(BookingOut), RowView(ClientOut)
_PUBLIC_CAR, _CAR = RowView(PublicCar), RowView(PassengerCarOut)


def booking_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """A bookings row as JSON."""
    return _BOOKING(booking_fields(row))


def client_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """A user row of backend.auth.clients as JSON."""
    return _CLIENT(row)


def public_view(car: Mapping[str, Any]) -> dict[str, Any]:
    """What anyone may see of a free car (the `cars` channel and GET /api/cars)."""
    return _PUBLIC_CAR(car)


def public_views(cars: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """public_view of each car, serialized as one list."""
    return _PUBLIC_CAR.many(cars)


def car_view(car: Mapping[str, Any]) -> dict[str, Any]:
    """Every field of a car (dashboard car.updated)."""
    return _CAR(car)
