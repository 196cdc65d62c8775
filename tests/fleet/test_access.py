"""Who may do what with fleet resources (SPEC §5.3–5.5, §11.16), and CRUD edges over HTTP."""

from __future__ import annotations

from backend.fleet.kinds import FIRE_TRUCK, PASSENGER
from tests.fleet.checks import assert_chain, assert_waybill, everything
from tests.fleet.conftest import (
    Crew,
    World,
    fire_record,
    seed_fire_truck,
    seed_passenger_car,
    seed_record,
    waybill_body,
)

WAYBILLS = "/api/passenger-car-waybills/"
RECORDS = "/api/passenger-car-records/"


async def new_waybill(crew: Crew, car: int, driver: int) -> dict:
    return await crew.mechanic.ok("POST", WAYBILLS, {"car": car, "driver": driver, "date": "2024-09-15",
                                                     "norm_season": "summer", "fuel_type": "petrol"}, 201)


async def test_cars_norms_snapshots_need_can_manage_fleet(crew: Crew) -> None:
    body = {"number": "A001AA54", "brand": "Toyota", "model": "Camry"}
    for user in (crew.driver, crew.client):
        assert (await user.call("POST", "/api/passenger-cars/", body))[0] == 403
    car = await crew.operator.ok("POST", "/api/passenger-cars/", body, 201)
    assert (car["shared"], car["state"], car["lat"], car["tariff_per_minute"]) == (False, "available", None, None)
    assert (await crew.client.call("GET", "/api/passenger-cars/"))[0] == 403          # plates are not public
    assert (await crew.driver.ok("GET", "/api/passenger-cars/"))["count"] == 1
    status, answer = await crew.operator.call("POST", "/api/passenger-cars/", {"number": "a001aa54"})
    assert status == 400 and "number" in answer
    norm = {"car": car["id"], "season": "summer", "city_norm": "0.09", "area_norm": "0.11", "date": "2024-09-01"}
    assert (await crew.driver.call("POST", "/api/passenger-car-norms/", norm))[0] == 403
    snap = {"car": car["id"], "odometer": 1, "fuel": "1", "date": "2024-09-01"}
    assert (await crew.driver.call("POST", "/api/passenger-car-odometer-fuel/", snap))[0] == 403


async def test_car_sharing_columns_and_read_only_state(crew: Crew) -> None:
    car = await crew.operator.ok("POST", "/api/passenger-cars/", {
        "number": "A001AA54", "shared": True, "lat": "55.751244", "lon": "37.618423", "fuel_level": "30.5",
        "tariff_per_minute": "9.9", "state": "maintenance"}, 201)
    assert (car["state"], car["lat"], car["lon"], car["fuel_level"], car["tariff_per_minute"]) == (
        "available", "55.751244", "37.618423", "30.500", "9.900")
    patched = await crew.operator.ok("PATCH", f"/api/passenger-cars/{car['id']}/", {"state": "in_trip",
                                                                                   "lat": "55.7"})
    assert (patched["state"], patched["lat"]) == ("available", "55.700000")
    assert (await crew.operator.call("PATCH", f"/api/passenger-cars/{car['id']}/", {"lat": "91"}))[0] == 400


async def test_drivers_see_only_their_waybills(crew: Crew) -> None:
    car = await seed_passenger_car(crew.mechanic)
    mine = await new_waybill(crew, car, crew.driver.user.id)
    theirs = await new_waybill(crew, car, crew.other_driver.user.id)
    listed = await crew.driver.ok("GET", WAYBILLS)
    assert [w["id"] for w in listed["results"]] == [mine["id"]]
    assert (await crew.driver.call("GET", f"{WAYBILLS}{theirs['id']}/"))[0] == 404
    assert (await crew.driver.call("PATCH", f"{WAYBILLS}{theirs['id']}/", {"fuel_type": "x"}))[0] == 404
    assert (await crew.mechanic.ok("GET", WAYBILLS, car=car, date_from="2024-09-15"))["count"] == 2
    assert (await crew.mechanic.ok("GET", WAYBILLS, driver=crew.driver.user.id))["count"] == 1
    assert (await crew.mechanic.ok("GET", WAYBILLS, date_to="2024-09-14"))["count"] == 0
    assert (await crew.mechanic.call("GET", WAYBILLS, date_to="yesterday"))[0] == 400
    # a driver may issue a waybill to themselves (driver omitted), not to someone else
    own = await crew.driver.ok("POST", WAYBILLS, {"car": car, "date": "2024-09-16", "norm_season": "summer"}, 201)
    assert own["driver"] == crew.driver.user.id
    status, _ = await crew.driver.call("POST", WAYBILLS, {"car": car, "driver": crew.other_driver.user.id,
                                                          "date": "2024-09-16", "norm_season": "summer"})
    assert status == 403
    assert (await crew.client.call("POST", WAYBILLS, {"car": car, "date": "2024-09-16",
                                                      "norm_season": "summer"}))[0] == 403
    # records follow their waybill's visibility
    await crew.other_driver.ok("POST", RECORDS, seed_record(theirs["id"]), 201)
    assert (await crew.driver.ok("GET", RECORDS))["count"] == 0
    assert (await crew.mechanic.ok("GET", RECORDS, passenger_car_waybill=theirs["id"]))["count"] == 1


async def test_aggregates_are_read_only(crew: Crew) -> None:
    car = await seed_passenger_car(crew.mechanic)
    waybill = await crew.mechanic.ok("POST", WAYBILLS, {"car": car, "driver": crew.driver.user.id,
                                                        "date": "2024-09-15", "norm_season": "summer",
                                                        "upon_issuance": "999", "savings": "5"}, 201)
    assert (waybill["upon_issuance"], waybill["savings"]) == ("40.000", "0.000")
    put = await crew.mechanic.ok("PUT", f"{WAYBILLS}{waybill['id']}/", {
        "car": car, "date": "2024-09-15", "norm_season": "summer", "fuel_type": "diesel", "total_spent": "1"})
    assert (put["fuel_type"], put["total_spent"], put["driver"]) == ("diesel", "0.000", crew.driver.user.id)


async def test_edit_and_delete_over_http_keep_the_chain(crew: Crew, world: World) -> None:
    car = await seed_passenger_car(crew.mechanic)
    first = await new_waybill(crew, car, crew.driver.user.id)
    second = await new_waybill(crew, car, crew.driver.user.id)
    a = await crew.driver.ok("POST", RECORDS, seed_record(first["id"]), 201)
    b = await crew.driver.ok("POST", RECORDS.rstrip("/"), seed_record(second["id"], distance_area_km=10), 201)
    c = await crew.driver.ok("POST", RECORDS, seed_record(first["id"], fuel_used="1"), 201)
    patched = await crew.driver.ok("PATCH", f"{RECORDS}{a['id']}/", {"distance_city_km": 100})
    assert (patched["odometer_after"], patched["fuel_used_city"], patched["target"]) == (100100, "9.000",
                                                                                        "Поездка в город")
    later = await crew.driver.ok("GET", f"{RECORDS}{c['id']}/")
    assert (later["odometer_before"], later["odometer_after"]) == (100160, 100210)
    replaced = await crew.driver.ok("PUT", f"{RECORDS}{b['id']}", seed_record(second["id"], fuel_refueled="0"))
    assert replaced["fuel_on_return"] == "34.000"
    await crew.driver.ok("DELETE", f"{RECORDS}{a['id']}/", status=204)
    assert (await crew.driver.call("GET", f"{RECORDS}{a['id']}/"))[0] == 404
    assert [r["id"] for r in await assert_chain(world, PASSENGER, car)] == [b["id"], c["id"]]
    for waybill in (first, second):
        await assert_waybill(world, PASSENGER, waybill["id"])
    # the first waybill now holds only c; moving the second waybill to another car is refused
    status, answer = await crew.mechanic.call("PATCH", f"{WAYBILLS}{second['id']}/", {"norm_season": "winter"})
    assert status == 400 and "norm_season" in answer
    # deleting a waybill deletes its records and mends the chain of the car
    await crew.mechanic.ok("DELETE", f"{WAYBILLS}{second['id']}/", status=204)
    (left,) = await assert_chain(world, PASSENGER, car)
    assert (left["id"], left["odometer_before"], left["fuel_before_departure"]) == (c["id"], 100000, 40)
    last = await crew.driver.ok("GET", "/api/passenger-car-odometer-fuel/last/", car=car)
    assert (last["odometer"], last["fuel"]) == (100050, "49.000")
    status, answer = await crew.mechanic.call("DELETE", f"/api/passenger-car-odometer-fuel/{last['id']}/")
    assert status == 400 and "non_field_errors" in answer


# ---- fire trucks ---------------------------------------------------------------------------------

FIRE_WAYBILLS = "/api/fire-truck-waybills/"
FIRE_RECORDS = "/api/fire-truck-records/"


async def test_fire_trucks_norms_snapshots_need_can_manage_fleet(crew: Crew) -> None:
    truck = {"number": "A101AA54", "brand": "КАМАЗ", "type": "АЦ-3,2-40"}
    for user in (crew.driver, crew.client):
        assert (await user.call("POST", "/api/fire-trucks/", truck))[0] == 403
    car = await crew.operator.ok("POST", "/api/fire-trucks/", truck, 201)
    assert (car["type"], car["model"]) == ("АЦ-3,2-40", "")
    assert (await crew.client.call("GET", "/api/fire-trucks/"))[0] == 403
    assert (await crew.driver.ok("GET", "/api/fire-trucks/"))["count"] == 1       # waybill users read cars
    norm = {"car": car["id"], "season": "winter", "with_pump_norm": "0.25", "without_pump_norm": "0.15",
            "km_norm": "0.657", "date": "2024-09-01"}
    snap = {"car": car["id"], "odometer": 20000, "fuel": "150", "date": "2024-09-01"}
    for user in (crew.driver, crew.client):
        assert (await user.call("POST", "/api/fire-truck-norms/", norm))[0] == 403
        assert (await user.call("POST", "/api/fire-truck-odometer-fuel/", snap))[0] == 403
    made = {"fire-trucks": car,
            "fire-truck-norms": await crew.operator.ok("POST", "/api/fire-truck-norms/", norm, 201),
            "fire-truck-odometer-fuel": await crew.operator.ok("POST", "/api/fire-truck-odometer-fuel/", snap, 201)}
    for name, row in made.items():
        item = f"/api/{name}/{row['id']}/"
        assert (await crew.driver.call("PATCH", item, {}))[0] == 403
        assert (await crew.driver.call("DELETE", item))[0] == 403
        assert (await crew.client.call("GET", item))[0] == 403
        assert await crew.driver.ok("GET", item) == row
    for path, params in [("/api/fire-truck-norms/for-date/", {"car": car["id"], "season": "winter",
                                                              "date": "2024-09-15"}),
                         ("/api/fire-truck-odometer-fuel/last/", {"car": car["id"]})]:
        assert (await crew.client.call("GET", path, **params))[0] == 403
        assert (await crew.driver.call("GET", path, **params))[0] == 200
    patched = await crew.operator.ok("PATCH", f"/api/fire-trucks/{car['id']}/", {"model": "43118"})
    assert patched["model"] == "43118"


async def test_fire_truck_drivers_see_only_their_waybills(crew: Crew, world: World) -> None:
    car = await seed_fire_truck(crew.mechanic)
    mine = await crew.mechanic.ok("POST", FIRE_WAYBILLS, waybill_body(FIRE_TRUCK, car, crew.driver.user.id), 201)
    theirs = await crew.mechanic.ok("POST", FIRE_WAYBILLS,
                                    waybill_body(FIRE_TRUCK, car, crew.other_driver.user.id), 201)
    assert [w["id"] for w in (await crew.driver.ok("GET", FIRE_WAYBILLS))["results"]] == [mine["id"]]
    other = f"{FIRE_WAYBILLS}{theirs['id']}/"
    assert (await crew.driver.call("GET", other))[0] == 404
    assert (await crew.driver.call("PATCH", other, {"fuel_type": "x"}))[0] == 404
    assert (await crew.driver.call("DELETE", other))[0] == 404
    # view_fire_trucks_waybills (the mechanic) sees every waybill; the filters narrow it
    assert (await crew.mechanic.ok("GET", FIRE_WAYBILLS))["count"] == 2
    assert (await crew.mechanic.ok("GET", FIRE_WAYBILLS, driver=crew.other_driver.user.id))["count"] == 1
    assert (await crew.mechanic.ok("GET", other))["driver"] == crew.other_driver.user.id
    # creating needs can_create_fire_trucks_waybills: a fleet manager without it may not
    own = await crew.driver.ok("POST", FIRE_WAYBILLS, waybill_body(FIRE_TRUCK, car), 201)
    assert (own["driver"], own["upon_issuance"]) == (crew.driver.user.id, "150.000")
    assert (await crew.driver.call("POST", FIRE_WAYBILLS,
                                   waybill_body(FIRE_TRUCK, car, crew.other_driver.user.id)))[0] == 403
    for user in (crew.operator, crew.client):
        assert (await user.call("POST", FIRE_WAYBILLS, waybill_body(FIRE_TRUCK, car)))[0] == 403
    # records follow their waybill's visibility; adding to someone else's is 403
    record = await crew.other_driver.ok("POST", FIRE_RECORDS, fire_record(theirs["id"]), 201)
    before = await everything(world)
    assert (await crew.driver.call("POST", FIRE_RECORDS, fire_record(theirs["id"], nth=2)))[0] == 403
    assert (await crew.driver.ok("GET", FIRE_RECORDS))["count"] == 0
    item = f"{FIRE_RECORDS}{record['id']}/"
    for method, body in [("GET", None), ("PATCH", {"target": "x"}), ("PUT", fire_record(theirs["id"])),
                         ("DELETE", None)]:
        assert (await crew.driver.call(method, item, body))[0] == 404, method
    assert await everything(world) == before
    assert (await crew.mechanic.ok("GET", FIRE_RECORDS, fire_truck_waybill=theirs["id"]))["count"] == 1
    # create + view (SPEC §11.16): the mechanic may write records of anyone's waybill
    await crew.mechanic.ok("POST", FIRE_RECORDS, fire_record(theirs["id"], nth=2), 201)
    await crew.mechanic.ok("PATCH", item, {"target": "Учения"})
    await assert_chain(world, FIRE_TRUCK, car)
    await assert_waybill(world, FIRE_TRUCK, theirs["id"])
