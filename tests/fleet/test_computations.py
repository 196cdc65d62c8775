"""The pure fuel arithmetic: the worked examples of SPEC §5.6 to the last digit, and the totals."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from backend.fleet.computations import Start, fire_truck_trip, passenger_trip, trip_errors, waybill_totals

D = Decimal
TIMES = {"departure_time": dt.time(8, 10), "arrival_time": dt.time(10, 0)}


def test_passenger_worked_example() -> None:
    trip = {"distance_city_km": 50, "distance_area_km": 0, "fuel_refueled": D("10.000"), "fuel_used": D("8.000"),
            "city_norm": D("0.090"), "area_norm": D("0.110")}
    out = passenger_trip(Start(100000, D("40.000")), trip)
    assert {k: str(v) for k, v in out.items()} == {
        "odometer_before": "100000", "fuel_before_departure": "40.000", "distance_total_km": "50",
        "odometer_after": "100050", "fuel_used_city": "4.500", "fuel_used_area": "0.000",
        "fuel_used_normal": "4.500", "fuel_on_return": "42.000"}
    assert trip_errors({**trip, **TIMES}, out) == {}


def test_fire_truck_worked_example() -> None:
    trip = {"odometer_after": 20090, "time_with_pump": 30, "time_without_pump": 15,
            "fuel_refueled": D("20.000"), "fuel_used": D("25.000"),
            "with_pump_norm": D("0.250"), "without_pump_norm": D("0.150"), "km_norm": D("0.657")}
    out = fire_truck_trip(Start(20000, D("150.000")), trip)
    assert {k: str(v) for k, v in out.items()} == {
        "odometer_before": "20000", "fuel_before_departure": "150.000", "distance_km": "90",
        "fuel_used_by_distance": "59.130", "fuel_used_with_pump": "7.500", "fuel_used_without_pump": "2.250",
        "fuel_used_normal": "68.880", "fuel_on_return": "145.000"}


def test_area_and_city_add_up_and_no_float_noise() -> None:
    trip = {"distance_city_km": 33, "distance_area_km": 7, "fuel_refueled": D("0.1"), "fuel_used": D("0.2"),
            "city_norm": D("0.111"), "area_norm": D("0.007")}
    out = passenger_trip(Start(1, D("0.300")), trip)
    assert (out["fuel_used_city"], out["fuel_used_area"], out["fuel_used_normal"]) == (D("3.663"), D("0.049"),
                                                                                       D("3.712"))
    assert str(out["fuel_on_return"]) == "0.200"     # 0.3 + 0.1 - 0.2, exact (a float gives 0.19999…)


def test_errors_name_the_fields_of_spec_11_16() -> None:
    back = fire_truck_trip(Start(100, D("1")), {"odometer_after": 99, "time_with_pump": 0, "time_without_pump": 0,
                                               "fuel_refueled": D(0), "fuel_used": D("2"), "with_pump_norm": D(0),
                                               "without_pump_norm": D(0), "km_norm": D(0)})
    trip = {"odometer_after": 99, "departure_time": dt.time(10), "arrival_time": dt.time(9)}
    assert set(trip_errors(trip, back)) == {"arrival_time", "odometer_after", "fuel_used"}


def test_waybill_totals_savings_and_overrun() -> None:
    saved = waybill_totals(D("40"), D("8"), D("10"), D("9.5"))
    assert saved == {"total_spent": D("8.000"), "total_received": D("10.000"), "required_by_norm": D("9.500"),
                     "availability_upon_delivery": D("42.000"), "savings": D("1.500"), "overrun": D("0.000")}
    over = waybill_totals(D("40"), D("12"), D("0"), D("9.5"))
    assert (over["savings"], over["overrun"], over["availability_upon_delivery"]) == (D(0), D("2.500"), D("28.000"))
