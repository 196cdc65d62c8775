"""The two kinds of vehicle (passenger car, fire truck): their tables, names, flags and access rules.

Everything else in the fleet package is written once and parametrized by a `Kind`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, Table, select

from backend.fleet import tables
from backend.fleet.computations import Trip, fire_truck_trip, passenger_trip
from backend.principal import Permission, Principal

MANAGE_FLEET = Permission.MANAGE_FLEET


@dataclass(frozen=True, slots=True, kw_only=True)
class Kind:
    """What differs between passenger cars and fire trucks."""

    name: str                       # "passenger_car"
    slug: str                       # "passenger-car": /api/<slug>-norms/, -odometer-fuel/, -waybills/, -records/
    cars_path: str                  # "/api/passenger-cars/"
    title: str                      # OpenAPI tag prefix
    cars: Table
    norms: Table
    snapshots: Table
    waybills: Table
    records: Table
    norm_columns: tuple[str, ...]
    waybill_field: str              # the record's API name for its waybill
    view_flag: str
    create_flag: str
    compute: Trip
    shares_cars: bool = False       # passenger cars are car-sharing cars too (SPEC §4.2)

    def path(self, topic: str) -> str:
        """The collection path of `topic` ("norms", "odometer-fuel", "waybills", "records")."""
        return f"/api/{self.slug}-{topic}/"

    def is_staff(self, principal: Principal) -> bool:
        """May read this kind's cars, norms and snapshots: fleet managers and its waybill users."""
        return principal.has_any(MANAGE_FLEET, self.view_flag, self.create_flag)

    def sees_all(self, principal: Principal) -> bool:
        """Sees every waybill of this kind (not only the ones they drive)."""
        return principal.has(self.view_flag)

    def may_write_records(self, principal: Principal, driver_id: int) -> bool:
        """The waybill's driver, or a holder of the create flag who sees all waybills (SPEC §11.16)."""
        return driver_id == principal.user_id or (principal.has(self.create_flag) and self.sees_all(principal))

    def scope_waybills(self, query: Select[Any], principal: Principal) -> Select[Any]:
        """Only the waybills `principal` may see (drivers: their own)."""
        if self.sees_all(principal):
            return query
        return query.where(self.waybills.c.driver_id == principal.user_id)

    def scope_records(self, query: Select[Any], principal: Principal) -> Select[Any]:
        """Only the records of waybills `principal` may see."""
        if self.sees_all(principal):
            return query
        own = select(self.waybills.c.id).where(self.waybills.c.driver_id == principal.user_id)
        return query.where(self.records.c.waybill_id.in_(own))


PASSENGER = Kind(
    name="passenger_car", slug="passenger-car", cars_path="/api/passenger-cars/", title="passenger cars",
    cars=tables.passenger_cars, norms=tables.passenger_car_norms, snapshots=tables.passenger_car_odometer_fuel,
    waybills=tables.passenger_car_waybills, records=tables.passenger_car_records,
    norm_columns=tables.PASSENGER_NORMS, waybill_field="passenger_car_waybill",
    view_flag=Permission.VIEW_PASSENGER_WAYBILLS, create_flag=Permission.CREATE_PASSENGER_WAYBILLS,
    compute=passenger_trip,
    shares_cars=True,
)

FIRE_TRUCK = Kind(
    name="fire_truck", slug="fire-truck", cars_path="/api/fire-trucks/", title="fire trucks",
    cars=tables.fire_trucks, norms=tables.fire_truck_norms, snapshots=tables.fire_truck_odometer_fuel,
    waybills=tables.fire_truck_waybills, records=tables.fire_truck_records,
    norm_columns=tables.FIRE_TRUCK_NORMS, waybill_field="fire_truck_waybill",
    view_flag=Permission.VIEW_FIRE_TRUCK_WAYBILLS, create_flag=Permission.CREATE_FIRE_TRUCK_WAYBILLS,
    compute=fire_truck_trip,
)

KINDS = (PASSENGER, FIRE_TRUCK)
