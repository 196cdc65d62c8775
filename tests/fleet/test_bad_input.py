"""Every bad input of SPEC §5.6 gets a 400 (or 403) in DRF shape and leaves the database unchanged."""

from __future__ import annotations

import pytest

from backend.fleet.kinds import FIRE_TRUCK, PASSENGER, Kind
from tests.fleet.checks import everything
from tests.fleet.conftest import (
    Crew,
    World,
    fire_record,
    seed_fire_truck,
    seed_passenger_car,
    seed_record,
    waybill_body,
)

FIRE_RECORDS = "/api/fire-truck-records/"


@pytest.fixture
async def waybill(crew: Crew) -> int:
    car = await seed_passenger_car(crew.mechanic)
    body = {"car": car, "driver": crew.driver.user.id, "date": "2024-09-15", "norm_season": "summer"}
    made = await crew.mechanic.ok("POST", "/api/passenger-car-waybills/", body, 201)
    await crew.driver.ok("POST", "/api/passenger-car-records/", seed_record(made["id"]), 201)
    return made["id"]


@pytest.mark.parametrize(("changes", "field"), [
    ({"distance_city_km": -1}, "distance_city_km"),
    ({"distance_area_km": -5}, "distance_area_km"),
    ({"fuel_refueled": "-0.001"}, "fuel_refueled"),
    ({"fuel_used": "-1"}, "fuel_used"),
    ({"fuel_used": "1.0001"}, "fuel_used"),
    ({"fuel_used": "много"}, "fuel_used"),
    ({"departure_time": "10:00:00", "arrival_time": "09:59:59"}, "arrival_time"),
    ({"departure_time": "25:00:00"}, "departure_time"),
    ({"fuel_refueled": "0", "fuel_used": "42.001"}, "fuel_used"),          # fuel_on_return < 0
    ({"passenger_car_waybill": 999999}, "passenger_car_waybill"),
])
async def test_bad_passenger_record(crew: Crew, world: World, waybill: int, changes: dict, field: str) -> None:
    before = await everything(world)
    status, body = await crew.driver.call("POST", "/api/passenger-car-records/", seed_record(waybill, **changes))
    assert status == 400 and body.get(field) and all(isinstance(m, str) for m in body[field]), body
    assert await everything(world) == before


async def test_bad_edits_change_nothing(crew: Crew, world: World, waybill: int) -> None:
    (record,) = (await crew.driver.ok("GET", "/api/passenger-car-records/"))["results"]
    path = f"/api/passenger-car-records/{record['id']}/"
    before = await everything(world)
    for body, field in [({"arrival_time": "08:00:00"}, "arrival_time"), ({"fuel_used": "50.001"}, "fuel_used"),
                        ({"fuel_used": None}, "fuel_used"), ({"distance_city_km": -3}, "distance_city_km"),
                        ({"passenger_car_waybill": waybill + 1}, "passenger_car_waybill")]:
        status, answer = await crew.driver.call("PATCH", path, body)
        assert status == 400 and field in answer, (body, answer)
    status, answer = await crew.driver.call("PUT", path, seed_record(waybill, fuel_refueled="0", fuel_used="41"))
    assert status == 400 and "fuel_used" in answer
    assert await everything(world) == before


@pytest.fixture
async def truck_waybill(crew: Crew) -> int:
    """A fire-truck waybill holding the seed's record: the truck is at 20090 km with 145 l now."""
    car = await seed_fire_truck(crew.mechanic)
    made = await crew.mechanic.ok("POST", "/api/fire-truck-waybills/",
                                  waybill_body(FIRE_TRUCK, car, crew.driver.user.id), 201)
    await crew.driver.ok("POST", FIRE_RECORDS, fire_record(made["id"]), 201)
    return made["id"]


@pytest.mark.parametrize(("changes", "field"), [
    ({"departure_time": "15:00:00", "arrival_time": "14:59:59"}, "arrival_time"),
    ({"fuel_refueled": "0", "fuel_used": "145.001"}, "fuel_used"),          # fuel_on_return < 0
    ({"odometer_after": 20089}, "odometer_after"),                           # below odometer_before 20090
    ({"odometer_after": -1}, "odometer_after"),
    ({"time_with_pump": -1}, "time_with_pump"),
    ({"time_without_pump": -30}, "time_without_pump"),
    ({"time_with_pump": 1.5}, "time_with_pump"),
    ({"fuel_refueled": "-0.001"}, "fuel_refueled"),
    ({"fuel_used": "-1"}, "fuel_used"),
    ({"fuel_used": None}, "fuel_used"),
    ({"arrival_time": "24:00:00"}, "arrival_time"),
    ({"fire_truck_waybill": 999999}, "fire_truck_waybill"),
])
async def test_bad_fire_truck_record(crew: Crew, world: World, truck_waybill: int, changes: dict,
                                     field: str) -> None:
    before = await everything(world)
    status, body = await crew.driver.call("POST", FIRE_RECORDS, fire_record(truck_waybill, nth=2, **changes))
    assert status == 400 and body.get(field) and all(isinstance(m, str) for m in body[field]), body
    assert await everything(world) == before


async def test_bad_fire_truck_edits_change_nothing(crew: Crew, world: World, truck_waybill: int) -> None:
    later = await crew.driver.ok("POST", FIRE_RECORDS, fire_record(truck_waybill, nth=2), 201)
    (first, _) = (await crew.driver.ok("GET", FIRE_RECORDS))["results"]
    before = await everything(world)
    for record, body, field in [
            (first, {"arrival_time": "13:59:59"}, "arrival_time"),
            (first, {"fuel_refueled": "0", "fuel_used": "150.001"}, "fuel_used"),
            (first, {"odometer_after": 19999}, "odometer_after"),
            (first, {"odometer_after": 20181}, "odometer_after"),    # passes the later record's 20180
            (first, {"time_with_pump": -1}, "time_with_pump"),
            (first, {"time_without_pump": None}, "time_without_pump"),
            (later, {"odometer_after": 20089}, "odometer_after"),
            (later, {"fire_truck_waybill": truck_waybill + 1}, "fire_truck_waybill")]:
        status, answer = await crew.driver.call("PATCH", f"{FIRE_RECORDS}{record['id']}/", body)
        assert status == 400 and field in answer, (body, answer)
    status, answer = await crew.driver.call("PUT", f"{FIRE_RECORDS}{later['id']}/",
                                            fire_record(truck_waybill, nth=2, fuel_refueled="0", fuel_used="146"))
    assert status == 400 and "fuel_used" in answer
    assert await everything(world) == before


async def test_deleted_waybill_and_someone_elses(crew: Crew, world: World, waybill: int) -> None:
    before = await everything(world)
    status, _ = await crew.other_driver.call("POST", "/api/passenger-car-records/", seed_record(waybill))
    assert status == 403
    status, _ = await crew.client.call("POST", "/api/passenger-car-records/", seed_record(waybill))
    assert status == 403
    assert await everything(world) == before
    await crew.mechanic.ok("DELETE", f"/api/passenger-car-waybills/{waybill}/", status=204)
    before = await everything(world)
    status, answer = await crew.driver.call("POST", "/api/passenger-car-records/", seed_record(waybill))
    assert status == 400 and "passenger_car_waybill" in answer
    assert await everything(world) == before


async def test_waybill_without_snapshot(crew: Crew, world: World, kind: Kind) -> None:
    """No snapshot, no upon_issuance (SPEC §5.5): 400 on `car`, and nothing is written."""
    m = crew.mechanic
    car = (await m.ok("POST", kind.cars_path, {"number": "B002BB54"}, 201))["id"]
    before = await everything(world)
    for user, body in [(m, waybill_body(kind, car, crew.driver.user.id)), (crew.driver, waybill_body(kind, car))]:
        status, answer = await user.call("POST", kind.path("waybills"), body)
        assert status == 400 and list(answer) == ["car"], answer
    assert await everything(world) == before
    # A deleted snapshot does not count either.
    snapshot = await m.ok("POST", kind.path("odometer-fuel"), {"car": car, "odometer": 5, "fuel": "1",
                                                               "date": "2024-09-01"}, 201)
    await m.ok("DELETE", f"{kind.path('odometer-fuel')}{snapshot['id']}/", status=204)
    before = await everything(world)
    status, answer = await m.call("POST", kind.path("waybills"), waybill_body(kind, car, crew.driver.user.id))
    assert status == 400 and list(answer) == ["car"], answer
    assert await everything(world) == before


async def test_no_norm(crew: Crew, world: World) -> None:
    m = crew.mechanic
    car = (await m.ok("POST", "/api/passenger-cars/", {"number": "B002BB54"}, 201))["id"]
    await m.ok("POST", "/api/passenger-car-odometer-fuel/", {"car": car, "odometer": 5, "fuel": "1",
                                                             "date": "2024-09-01"}, 201)
    waybill = await m.ok("POST", "/api/passenger-car-waybills/", {
        "car": car, "driver": crew.driver.user.id, "date": "2024-09-15", "norm_season": "winter"}, 201)
    before = await everything(world)
    status, answer = await crew.driver.call("POST", "/api/passenger-car-records/", seed_record(waybill["id"]))
    assert status == 400 and "non_field_errors" in answer        # no winter norm for that date
    assert await everything(world) == before


async def test_malformed_bodies_are_4xx(crew: Crew) -> None:
    resp = await crew.driver.client.post("/api/passenger-car-records/", data=b"{", headers={
        **crew.driver.user.headers, "Content-Type": "application/json"})
    assert resp.status == 400
    status, _ = await crew.driver.call("POST", "/api/passenger-car-records/", [1, 2])
    assert status == 400
    status, _ = await crew.driver.call("GET", "/api/passenger-car-records/abc/")
    assert status == 404


async def test_record_for_a_deleted_car(crew: Crew, world: World, waybill: int) -> None:
    (row,) = await world.rows(PASSENGER.waybills, id=waybill)
    await crew.mechanic.ok("DELETE", f"/api/passenger-cars/{row['car_id']}/", status=204)
    before = await everything(world)
    status, answer = await crew.driver.call("POST", "/api/passenger-car-records/", seed_record(waybill))
    assert status == 400 and "passenger_car_waybill" in answer
    assert await everything(world) == before
