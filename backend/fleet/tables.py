"""Core tables of the fleet (sql/002_fleet.sql, 006): both kinds are built by the same functions."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Integer,
    Numeric,
    Table,
    Text,
    Time,
    text,
)
from sqlalchemy.dialects.postgresql import TIMESTAMP

from backend.db import metadata

TZ = TIMESTAMP(timezone=True)
FUEL = Numeric(15, 3, asdecimal=True)
NORM = Numeric(10, 3, asdecimal=True)

AGGREGATES = ("upon_issuance", "total_spent", "total_received", "required_by_norm",
              "availability_upon_delivery", "savings", "overrun")


def _stamps(*, updated: bool = True) -> list[Column]:
    """created_at / updated_at / deleted_at, in the order the migration declares them."""
    columns = [Column("created_at", TZ, nullable=False, server_default=text("now()"))]
    if updated:
        columns.append(Column("updated_at", TZ, nullable=False, server_default=text("now()")))
    columns.append(Column("deleted_at", TZ))
    return columns


def _cars(name: str, *extra: Column) -> Table:
    return Table(
        name, metadata,
        Column("id", BigInteger, primary_key=True),
        Column("number", Text, nullable=False),
        Column("brand", Text, nullable=False, server_default=""),
        Column("model", Text, nullable=False, server_default=""),
        *extra,
        *_stamps(),
    )


def _norms(name: str, cars: str, *norms: str) -> Table:
    return Table(
        name, metadata,
        Column("id", BigInteger, primary_key=True),
        Column("car_id", BigInteger, ForeignKey(f"{cars}.id"), nullable=False),
        Column("season", Text, nullable=False),
        *(Column(norm, NORM, nullable=False) for norm in norms),
        Column("date", Date, nullable=False),
        *_stamps(updated=False),
    )


def _waybills(name: str, cars: str, snapshots: str) -> Table:
    # use_alter: snapshots reference waybills too; sql/006 adds this key with ALTER TABLE, after both exist.
    issued_from = ForeignKey(f"{snapshots}.id", use_alter=True, name=f"{name}_issued_from_snapshot_id_fkey")
    return Table(
        name, metadata,
        Column("id", BigInteger, primary_key=True),
        Column("car_id", BigInteger, ForeignKey(f"{cars}.id"), nullable=False),
        Column("driver_id", BigInteger, ForeignKey("users.id"), nullable=False),
        Column("date", Date, nullable=False),
        Column("norm_season", Text, nullable=False),
        Column("fuel_type", Text, nullable=False, server_default=""),
        *(Column(name, FUEL, nullable=False, server_default=text("0")) for name in AGGREGATES),
        *_stamps(),
        Column("issued_from_snapshot_id", BigInteger, issued_from),   # sql/006; see fleet/issuance.py
    )


def _snapshots(name: str, cars: str, waybills: str) -> Table:
    return Table(
        name, metadata,
        Column("id", BigInteger, primary_key=True),
        Column("car_id", BigInteger, ForeignKey(f"{cars}.id"), nullable=False),
        Column("odometer", BigInteger, nullable=False),
        Column("fuel", FUEL, nullable=False),
        Column("date", Date, nullable=False),
        Column("waybill_id", BigInteger, ForeignKey(f"{waybills}.id")),
        *_stamps(updated=False),
    )


def _records(name: str, cars: str, waybills: str, snapshots: str, norms: tuple[str, ...],
             trip: list[Column], computed: list[Column]) -> Table:
    return Table(
        name, metadata,
        Column("id", BigInteger, primary_key=True),
        Column("waybill_id", BigInteger, ForeignKey(f"{waybills}.id"), nullable=False),
        Column("car_id", BigInteger, ForeignKey(f"{cars}.id"), nullable=False),
        Column("snapshot_id", BigInteger, ForeignKey(f"{snapshots}.id"), nullable=False),
        *(Column(norm, NORM, nullable=False) for norm in norms),
        Column("target", Text, nullable=False, server_default=""),
        Column("departure_time", Time, nullable=False),
        Column("arrival_time", Time, nullable=False),
        *trip,
        Column("fuel_refueled", FUEL, nullable=False),
        Column("fuel_used", FUEL, nullable=False),
        Column("odometer_before", BigInteger, nullable=False),
        Column("fuel_before_departure", FUEL, nullable=False),
        *computed,
        Column("fuel_used_normal", FUEL, nullable=False),
        Column("fuel_on_return", FUEL, nullable=False),
        *_stamps(),
    )


PASSENGER_NORMS = ("city_norm", "area_norm")
FIRE_TRUCK_NORMS = ("with_pump_norm", "without_pump_norm", "km_norm")

passenger_cars = _cars(
    "passenger_cars",
    Column("shared", Boolean, nullable=False, server_default=text("false")),
    Column("state", Text, nullable=False, server_default="available"),
    Column("lat", Numeric(9, 6, asdecimal=True)),
    Column("lon", Numeric(9, 6, asdecimal=True)),
    Column("fuel_level", Numeric(12, 3, asdecimal=True)),
    Column("tariff_per_minute", Numeric(12, 3, asdecimal=True)),
    Column("state_changed_at", TZ, nullable=False, server_default=text("now()")),
)
fire_trucks = _cars("fire_trucks", Column("type", Text, nullable=False, server_default=""))

passenger_car_norms = _norms("passenger_car_norms", "passenger_cars", *PASSENGER_NORMS)
fire_truck_norms = _norms("fire_truck_norms", "fire_trucks", *FIRE_TRUCK_NORMS)

passenger_car_waybills = _waybills("passenger_car_waybills", "passenger_cars", "passenger_car_odometer_fuel")
fire_truck_waybills = _waybills("fire_truck_waybills", "fire_trucks", "fire_truck_odometer_fuel")

passenger_car_odometer_fuel = _snapshots("passenger_car_odometer_fuel", "passenger_cars",
                                         "passenger_car_waybills")
fire_truck_odometer_fuel = _snapshots("fire_truck_odometer_fuel", "fire_trucks", "fire_truck_waybills")

passenger_car_records = _records(
    "passenger_car_records", "passenger_cars", "passenger_car_waybills", "passenger_car_odometer_fuel",
    PASSENGER_NORMS,
    trip=[Column("distance_city_km", Integer, nullable=False),
          Column("distance_area_km", Integer, nullable=False)],
    computed=[Column("distance_total_km", Integer, nullable=False),
              Column("odometer_after", BigInteger, nullable=False),
              Column("fuel_used_city", FUEL, nullable=False),
              Column("fuel_used_area", FUEL, nullable=False)],
)
fire_truck_records = _records(
    "fire_truck_records", "fire_trucks", "fire_truck_waybills", "fire_truck_odometer_fuel",
    FIRE_TRUCK_NORMS,
    trip=[Column("odometer_after", BigInteger, nullable=False),
          Column("time_with_pump", Integer, nullable=False),
          Column("time_without_pump", Integer, nullable=False)],
    computed=[Column("distance_km", BigInteger, nullable=False),
              Column("fuel_used_by_distance", FUEL, nullable=False),
              Column("fuel_used_with_pump", FUEL, nullable=False),
              Column("fuel_used_without_pump", FUEL, nullable=False)],
)
