"""The two worked examples of SPEC §5.6 (seed 001), through the HTTP API, to the last digit."""

from __future__ import annotations

from tests.fleet.conftest import Crew, seed_passenger_car, seed_record


async def test_passenger_car_example(crew: Crew) -> None:
    car = await seed_passenger_car(crew.mechanic)
    waybill = await crew.mechanic.ok("POST", "/api/passenger-car-waybills/", {
        "car": car, "driver": crew.driver.user.id, "date": "2024-09-15", "norm_season": "summer",
        "fuel_type": "petrol"}, 201)
    assert waybill == {
        "id": waybill["id"], "car": car, "driver": crew.driver.user.id, "date": "2024-09-15",
        "norm_season": "summer", "fuel_type": "petrol", "upon_issuance": "40.000", "total_spent": "0.000",
        "total_received": "0.000", "required_by_norm": "0.000", "availability_upon_delivery": "40.000",
        "savings": "0.000", "overrun": "0.000", "deleted_at": None}

    record = await crew.driver.ok("POST", "/api/passenger-car-records/", seed_record(waybill["id"]), 201)
    assert record == {
        "id": record["id"], "passenger_car_waybill": waybill["id"], "target": "Поездка в город",
        "departure_time": "08:10:00", "arrival_time": "10:00:00", "distance_city_km": 50, "distance_area_km": 0,
        "fuel_refueled": "10.000", "fuel_used": "8.000",
        "odometer_before": 100000, "fuel_before_departure": "40.000", "distance_total_km": 50,
        "odometer_after": 100050, "fuel_used_city": "4.500", "fuel_used_area": "0.000",
        "fuel_used_normal": "4.500", "fuel_on_return": "42.000", "deleted_at": None}

    last = await crew.driver.ok("GET", "/api/passenger-car-odometer-fuel/last/", car=car)
    assert (last["odometer"], last["fuel"], last["date"], last["waybill"]) == (100050, "42.000", "2024-09-15",
                                                                             waybill["id"])
    after = await crew.driver.ok("GET", f"/api/passenger-car-waybills/{waybill['id']}/")
    assert {k: after[k] for k in ("upon_issuance", "total_spent", "total_received", "required_by_norm",
                                  "availability_upon_delivery", "savings", "overrun")} == {
        "upon_issuance": "40.000", "total_spent": "8.000", "total_received": "10.000", "required_by_norm": "4.500",
        "availability_upon_delivery": "42.000", "savings": "0.000", "overrun": "3.500"}


async def test_fire_truck_example(crew: Crew) -> None:
    m = crew.mechanic
    truck = await m.ok("POST", "/api/fire-trucks/", {"number": "A101AA54", "brand": "КАМАЗ", "model": "43118",
                                                     "type": "АЦ-3,2-40"}, 201)
    assert truck["type"] == "АЦ-3,2-40"
    car = truck["id"]
    norm = await m.ok("POST", "/api/fire-truck-norms/", {"car": car, "season": "winter", "with_pump_norm": "0.250",
                                                         "without_pump_norm": "0.150", "km_norm": "0.657",
                                                         "date": "2024-09-01"}, 201)
    assert (norm["with_pump_norm"], norm["km_norm"]) == ("0.250", "0.657")
    await m.ok("POST", "/api/fire-truck-odometer-fuel/", {"car": car, "odometer": 20000, "fuel": "150.000",
                                                          "date": "2024-09-01", "waybill": None}, 201)
    waybill = await crew.driver.ok("POST", "/api/fire-truck-waybills/", {
        "car": car, "driver": crew.driver.user.id, "date": "2024-09-15", "norm_season": "winter",
        "fuel_type": "diesel"}, 201)
    assert waybill["upon_issuance"] == "150.000"
    record = await crew.driver.ok("POST", "/api/fire-truck-records/", {
        "fire_truck_waybill": waybill["id"], "target": "Выезд на пожар", "departure_time": "14:00:00",
        "arrival_time": "15:30:00", "odometer_after": 20090, "time_with_pump": 30, "time_without_pump": 15,
        "fuel_refueled": "20.000", "fuel_used": "25.000"}, 201)
    assert record == {
        "id": record["id"], "fire_truck_waybill": waybill["id"], "target": "Выезд на пожар",
        "departure_time": "14:00:00", "arrival_time": "15:30:00", "odometer_after": 20090, "time_with_pump": 30,
        "time_without_pump": 15, "fuel_refueled": "20.000", "fuel_used": "25.000",
        "odometer_before": 20000, "fuel_before_departure": "150.000", "distance_km": 90,
        "fuel_used_by_distance": "59.130", "fuel_used_with_pump": "7.500", "fuel_used_without_pump": "2.250",
        "fuel_used_normal": "68.880", "fuel_on_return": "145.000", "deleted_at": None}
    after = await crew.driver.ok("GET", f"/api/fire-truck-waybills/{waybill['id']}/")
    assert (after["total_spent"], after["required_by_norm"], after["availability_upon_delivery"],
            after["savings"], after["overrun"]) == ("25.000", "68.880", "145.000", "43.880", "0.000")
