"""RowView (backend.api.views) gives exactly the JSON of `model_validate(row).model_dump(mode="json")`,
field for field and in the model's order, for every view built on it; and refuses a model whose
output a validator shapes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel, field_validator

from backend.api.views import RowView
from backend.auth.schemas import MeOut
from backend.fleet.schemas import PassengerCarOut
from backend.sharing.schemas import (
    BookingOut,
    ClientOut,
    PublicCar,
    booking_fields,
    booking_view,
    car_view,
    client_view,
    public_view,
    public_views,
)

UTC = dt.UTC
NOW = dt.datetime(2026, 12, 2, 16, 0, 0, 123456, tzinfo=UTC)
WHOLE = dt.datetime(2026, 12, 2, 16, 0, 0, tzinfo=UTC)
MOSCOW = dt.datetime(2026, 12, 2, 19, 0, 0, 5, tzinfo=dt.timezone(dt.timedelta(hours=3)))

CARS = [
    {"id": 7, "number": "А123ВС", "brand": "Lada", "model": "Vesta", "shared": True, "state": "available",
     "lat": Decimal("55.123456"), "lon": Decimal("82.900000"), "fuel_level": Decimal("30.5"),
     "tariff_per_minute": Decimal("9.995"), "state_changed_at": NOW, "created_at": WHOLE, "updated_at": NOW,
     "deleted_at": None},
    {"id": 8, "number": "X1", "brand": "", "model": "", "shared": False, "state": "maintenance", "lat": None,
     "lon": None, "fuel_level": None, "tariff_per_minute": Decimal("0"), "state_changed_at": MOSCOW,
     "created_at": WHOLE, "updated_at": WHOLE, "deleted_at": MOSCOW},
]
BOOKINGS = [
    {"id": 1, "car_id": 7, "user_id": 3, "status": "reserved", "tariff_per_minute": Decimal("10.00"),
     "reserved_until": NOW, "started_at": None, "finished_at": None, "duration_s": None, "cost": None,
     "start_lat": None, "start_lon": None, "start_fuel_level": None, "end_lat": None, "end_lon": None,
     "end_fuel_level": None, "created_at": WHOLE, "updated_at": NOW},
    {"id": 2, "car_id": 8, "user_id": 4, "status": "finished", "tariff_per_minute": Decimal("7.5"),
     "reserved_until": WHOLE, "started_at": WHOLE, "finished_at": MOSCOW, "duration_s": 61, "cost": Decimal("15.0005"),
     "start_lat": Decimal("-90.000000"), "start_lon": Decimal("180.000000"), "start_fuel_level": Decimal("1"),
     "end_lat": Decimal("0.000001"), "end_lon": Decimal("-0.5"), "end_fuel_level": Decimal("999999.999"),
     "created_at": WHOLE, "updated_at": MOSCOW},
]
CLIENTS = [
    {"id": 3, "login": "client", "name": "Иван", "surname": "", "last_name": "", "email": None,
     "phone": "+79001234567", "driver_license": None, "role": 4, "client_status": "blocked",
     "blocked_reason": "долг", "deleted_at": None},
]


def same_json(got: dict[str, Any], model: type[BaseModel], data: dict[str, Any]) -> None:
    want = model.model_validate(data).model_dump(mode="json")
    assert list(got.items()) == list(want.items())


@pytest.mark.parametrize("row", BOOKINGS)
def test_booking_view(row: dict[str, Any]) -> None:
    same_json(booking_view(row), BookingOut, booking_fields(row))


@pytest.mark.parametrize("car", CARS)
def test_car_views(car: dict[str, Any]) -> None:
    same_json(car_view(car), PassengerCarOut, car)
    same_json(public_view(car), PublicCar, car)


def test_public_views_of_a_list() -> None:
    assert public_views(CARS) == [PublicCar.model_validate(car).model_dump(mode="json") for car in CARS]
    assert public_views([]) == []


@pytest.mark.parametrize("row", CLIENTS)
def test_client_view(row: dict[str, Any]) -> None:
    same_json(client_view(row), ClientOut, row)


def test_a_model_with_a_validator_is_refused() -> None:
    class Shaped(MeOut):
        @field_validator("login")
        @classmethod
        def _lower(cls, value: str) -> str:
            return value.lower()

    with pytest.raises(TypeError, match="validator"):
        RowView(Shaped)
