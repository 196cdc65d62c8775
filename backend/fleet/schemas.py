"""Request and response bodies of the fleet resources (SPEC §5), with the seed's field names."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, PlainSerializer, WithJsonSchema

from backend.api.types import Amount, Id, NonNegativeAmount

Season = Literal["summer", "winter"]
# Upper bounds keep every value inside its numeric(p,3) column (an overflow would be a 500).
Litres = Annotated[NonNegativeAmount, Field(le=Decimal("999999.999"))]
Norm = Annotated[NonNegativeAmount, Field(le=Decimal("1000"))]
Km = Annotated[int, Field(ge=0, le=100_000)]
Minutes = Annotated[int, Field(ge=0, le=100_000)]
Odometer = Annotated[int, Field(ge=0, le=10**12)]
Text = Annotated[str, Field(max_length=500)]
Ref = Id        # the one integer rule of every surface (backend.api.types)


def _naive(value: dt.time) -> dt.time:
    # SPEC §2.4: times are HH:MM:SS, a time of day in the waybill's date (no offset, no fraction).
    return value.replace(tzinfo=None, microsecond=0)


# Documented as what is returned: JSON Schema's `format: time` is RFC 3339's full-time, which needs
# an offset these times of day do not carry.
TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$"
TimeOfDay = Annotated[dt.time, AfterValidator(_naive),
                      WithJsonSchema({"type": "string", "pattern": TIME_PATTERN, "examples": ["08:10:00"]})]


_AS_STRING = PlainSerializer(str, return_type=str, when_used="json")
Latitude = Annotated[Decimal, Field(ge=-90, le=90, max_digits=9, decimal_places=6), _AS_STRING]
Longitude = Annotated[Decimal, Field(ge=-180, le=180, max_digits=9, decimal_places=6), _AS_STRING]


# ---- cars ---------------------------------------------------------------------------------------
class PassengerCarIn(BaseModel):
    number: Annotated[str, Field(min_length=1, max_length=20)]
    brand: Annotated[str, Field(max_length=100)] = ""
    model: Annotated[str, Field(max_length=100)] = ""
    shared: bool = False
    lat: Latitude | None = None
    lon: Longitude | None = None
    fuel_level: Litres | None = None
    tariff_per_minute: Litres | None = None


class PassengerCarOut(PassengerCarIn):
    id: int
    state: str
    state_changed_at: dt.datetime
    deleted_at: dt.datetime | None


class FireTruckIn(BaseModel):
    number: Annotated[str, Field(min_length=1, max_length=20)]
    brand: Annotated[str, Field(max_length=100)] = ""
    model: Annotated[str, Field(max_length=100)] = ""
    type: Annotated[str, Field(max_length=100)] = ""


class FireTruckOut(FireTruckIn):
    id: int
    deleted_at: dt.datetime | None


# ---- norms --------------------------------------------------------------------------------------
class PassengerNormIn(BaseModel):
    car: Ref
    season: Season
    city_norm: Norm
    area_norm: Norm
    date: dt.date


class FireTruckNormIn(BaseModel):
    car: Ref
    season: Season
    with_pump_norm: Norm
    without_pump_norm: Norm
    km_norm: Norm
    date: dt.date


class PassengerNormOut(PassengerNormIn):
    id: int
    deleted_at: dt.datetime | None


class FireTruckNormOut(FireTruckNormIn):
    id: int
    deleted_at: dt.datetime | None


class ForDateQuery(BaseModel):
    car: Ref
    season: Season
    date: dt.date


class CarQuery(BaseModel):
    car: Ref


# ---- snapshots ----------------------------------------------------------------------------------
class SnapshotIn(BaseModel):
    car: Ref
    odometer: Odometer
    fuel: Litres
    date: dt.date
    waybill: Ref | None = None


class SnapshotOut(SnapshotIn):
    id: int
    deleted_at: dt.datetime | None


# ---- waybills -----------------------------------------------------------------------------------
class WaybillIn(BaseModel):
    car: Ref
    driver: Ref | None = None            # the caller when omitted
    date: dt.date
    norm_season: Season
    fuel_type: Annotated[str, Field(max_length=50)] = ""


class WaybillOut(WaybillIn):
    id: int
    driver: int
    upon_issuance: Amount
    total_spent: Amount
    total_received: Amount
    required_by_norm: Amount
    availability_upon_delivery: Amount
    savings: Amount
    overrun: Amount
    deleted_at: dt.datetime | None


# ---- records ------------------------------------------------------------------------------------
class _RecordTimes(BaseModel):
    target: Text = ""
    departure_time: TimeOfDay
    arrival_time: TimeOfDay


class PassengerRecordIn(_RecordTimes):
    passenger_car_waybill: Ref
    distance_city_km: Km = 0
    distance_area_km: Km = 0
    fuel_refueled: Litres = Decimal(0)
    fuel_used: Litres


class FireTruckRecordIn(_RecordTimes):
    fire_truck_waybill: Ref
    odometer_after: Odometer
    time_with_pump: Minutes = 0
    time_without_pump: Minutes = 0
    fuel_refueled: Litres = Decimal(0)
    fuel_used: Litres


class PassengerRecordOut(PassengerRecordIn):
    id: int
    odometer_before: int
    fuel_before_departure: Amount
    distance_total_km: int
    odometer_after: int
    fuel_used_city: Amount
    fuel_used_area: Amount
    fuel_used_normal: Amount
    fuel_on_return: Amount
    deleted_at: dt.datetime | None


class FireTruckRecordOut(FireTruckRecordIn):
    id: int
    odometer_before: int
    fuel_before_departure: Amount
    distance_km: int
    fuel_used_by_distance: Amount
    fuel_used_with_pump: Amount
    fuel_used_without_pump: Amount
    fuel_used_normal: Amount
    fuel_on_return: Amount
    deleted_at: dt.datetime | None
