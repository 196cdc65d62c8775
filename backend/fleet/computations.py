"""Fuel arithmetic of SPEC §5.5–5.6: pure Decimal functions, no I/O, no floats.

Inputs carry at most 3 decimals (norms and litres) and whole kilometres/minutes, so every product
is already exact to 3 decimals; `q3` (ROUND_HALF_UP) is applied anyway so the stored values never
depend on that assumption.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from backend.api.types import q3

ZERO = Decimal("0.000")


@dataclass(frozen=True, slots=True)
class Start:
    """Where a trip starts: the car's previous snapshot."""

    odometer: int
    fuel: Decimal


Trip = Callable[[Start, Mapping[str, Any]], dict[str, Any]]


def _fuel_on_return(start: Start, trip: Mapping[str, Any]) -> Decimal:
    return q3(start.fuel + Decimal(trip["fuel_refueled"]) - Decimal(trip["fuel_used"]))


def passenger_trip(start: Start, trip: Mapping[str, Any]) -> dict[str, Any]:
    """Computed columns of a passenger-car record; `trip` holds its inputs and its norms."""
    city, area = int(trip["distance_city_km"]), int(trip["distance_area_km"])
    fuel_used_city = q3(city * Decimal(trip["city_norm"]))
    fuel_used_area = q3(area * Decimal(trip["area_norm"]))
    return {
        "odometer_before": start.odometer,
        "fuel_before_departure": q3(start.fuel),
        "distance_total_km": city + area,
        "odometer_after": start.odometer + city + area,
        "fuel_used_city": fuel_used_city,
        "fuel_used_area": fuel_used_area,
        "fuel_used_normal": fuel_used_city + fuel_used_area,
        "fuel_on_return": _fuel_on_return(start, trip),
    }


def fire_truck_trip(start: Start, trip: Mapping[str, Any]) -> dict[str, Any]:
    """Computed columns of a fire-truck record; `trip` holds its inputs and its norms."""
    distance = int(trip["odometer_after"]) - start.odometer
    by_distance = q3(distance * Decimal(trip["km_norm"]))
    with_pump = q3(int(trip["time_with_pump"]) * Decimal(trip["with_pump_norm"]))
    without_pump = q3(int(trip["time_without_pump"]) * Decimal(trip["without_pump_norm"]))
    return {
        "odometer_before": start.odometer,
        "fuel_before_departure": q3(start.fuel),
        "distance_km": distance,
        "fuel_used_by_distance": by_distance,
        "fuel_used_with_pump": with_pump,
        "fuel_used_without_pump": without_pump,
        "fuel_used_normal": by_distance + with_pump + without_pump,
        "fuel_on_return": _fuel_on_return(start, trip),
    }


def trip_errors(trip: Mapping[str, Any], computed: Mapping[str, Any]) -> dict[str, list[str]]:
    """The field errors of SPEC §5.6/§11.16 for one record; empty when the record is valid."""
    errors: dict[str, list[str]] = {}
    departure: dt.time = trip["departure_time"]
    arrival: dt.time = trip["arrival_time"]
    if arrival < departure:
        errors["arrival_time"] = ["Время возвращения не может быть раньше времени выезда."]
    if int(computed.get("odometer_after", trip.get("odometer_after", 0))) < int(computed["odometer_before"]):
        errors["odometer_after"] = [
            f"Показание одометра после выезда не может быть меньше, чем до выезда ({computed['odometer_before']})."]
    if computed["fuel_on_return"] < 0:
        errors["fuel_used"] = [
            f"Остаток топлива при возвращении не может быть отрицательным ({computed['fuel_on_return']})."]
    return errors


def waybill_totals(upon_issuance: Decimal, total_spent: Decimal, total_received: Decimal,
                   required_by_norm: Decimal) -> dict[str, Decimal]:
    """The aggregates of a waybill (SPEC §5.5) from the sums over its live records."""
    spent, received, required = q3(total_spent), q3(total_received), q3(required_by_norm)
    return {
        "total_spent": spent,
        "total_received": received,
        "required_by_norm": required,
        "availability_upon_delivery": q3(upon_issuance) + received - spent,
        "savings": max(ZERO, required - spent),
        "overrun": max(ZERO, spent - required),
    }
