"""The record chain at the domain level, against the real database (backend/fleet/records.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select

from backend.db import transaction
from backend.errors import ApiError
from backend.fleet import records
from backend.fleet.kinds import FIRE_TRUCK, PASSENGER
from tests.fleet.checks import assert_chain, assert_waybill
from tests.fleet.conftest import World, passenger_trip

D = Decimal
CREATE = PASSENGER.create_flag


async def test_create_reproduces_the_seed_and_extends_the_chain(world: World) -> None:
    driver = await world.driver(CREATE)
    car = await world.car(PASSENGER)
    waybill = await world.waybill(PASSENGER, car, driver)
    row = await records.create_record(world.pool, PASSENGER, driver, passenger_trip(waybill))
    assert (row["odometer_before"], row["fuel_before_departure"], row["odometer_after"]) == (100000, D(40), 100050)
    assert (row["fuel_used_city"], row["fuel_used_normal"], row["fuel_on_return"]) == (D("4.5"), D("4.5"), D(42))
    (snap,) = [s for s in await world.rows(PASSENGER.snapshots, car_id=car) if s["id"] == row["snapshot_id"]]
    assert (snap["odometer"], snap["fuel"], snap["waybill_id"], snap["date"]) == (100050, D(42), waybill,
                                                                               dt.date(2024, 9, 15))
    totals = await assert_waybill(world, PASSENGER, waybill)
    assert (totals["availability_upon_delivery"], totals["savings"], totals["overrun"]) == (D(42), D(0), D("3.5"))


async def test_edit_recomputes_later_records_of_every_waybill(world: World) -> None:
    driver = await world.driver(CREATE)
    car = await world.car(PASSENGER)
    first, second = await world.waybill(PASSENGER, car, driver), await world.waybill(PASSENGER, car, driver)
    a = await records.create_record(world.pool, PASSENGER, driver, passenger_trip(first))
    b = await records.create_record(world.pool, PASSENGER, driver, passenger_trip(second, city=10, used="1"))
    c = await records.create_record(world.pool, PASSENGER, driver, passenger_trip(first, area=20, used="3"))
    edited = await records.update_record(world.engine, PASSENGER, driver, a["id"],
                                         {"distance_city_km": 70, "fuel_used": D("12.5")})
    assert (edited["odometer_after"], edited["fuel_on_return"], edited["fuel_used_city"]) == (100070, D("37.5"),
                                                                                            D("6.3"))
    chain = await assert_chain(world, PASSENGER, car)
    assert [r["id"] for r in chain] == [a["id"], b["id"], c["id"]]
    assert (chain[1]["odometer_before"], chain[2]["odometer_after"]) == (100070, 100150)
    await assert_waybill(world, PASSENGER, first)
    await assert_waybill(world, PASSENGER, second)


async def test_delete_closes_the_gap(world: World) -> None:
    driver = await world.driver(CREATE)
    car = await world.car(PASSENGER)
    waybill = await world.waybill(PASSENGER, car, driver)
    made = [await records.create_record(world.pool, PASSENGER, driver, passenger_trip(waybill, city=10 * i))
            for i in (1, 2, 3)]
    await records.delete_record(world.engine, PASSENGER, driver, made[1]["id"])
    chain = await assert_chain(world, PASSENGER, car)
    assert [r["id"] for r in chain] == [made[0]["id"], made[2]["id"]]
    assert (chain[1]["odometer_before"], chain[1]["fuel_before_departure"]) == (100010, D(42))
    assert (await assert_waybill(world, PASSENGER, waybill))["total_spent"] == D(16)
    with pytest.raises(ApiError) as err:
        await records.delete_record(world.engine, PASSENGER, driver, made[1]["id"])
    assert err.value.status == 404


async def test_a_measurement_restarts_the_chain(world: World) -> None:
    driver = await world.driver(CREATE)
    car = await world.car(PASSENGER)
    waybill = await world.waybill(PASSENGER, car, driver)
    a = await records.create_record(world.pool, PASSENGER, driver, passenger_trip(waybill))
    await world.snapshot(PASSENGER, car, 200000, D("5"))
    b = await records.create_record(world.pool, PASSENGER, driver, passenger_trip(waybill, used="1"))
    await records.update_record(world.engine, PASSENGER, driver, a["id"], {"distance_city_km": 1})
    chain = await assert_chain(world, PASSENGER, car)
    assert chain[1]["id"] == b["id"] and chain[1]["odometer_before"] == 200000


async def test_fire_truck_edit_that_breaks_a_later_record_changes_nothing(world: World) -> None:
    driver = await world.driver(FIRE_TRUCK.create_flag)
    car = await world.car(FIRE_TRUCK)
    waybill = await world.waybill(FIRE_TRUCK, car, driver, "winter")
    trip = {"waybill_id": waybill, "target": "", "departure_time": dt.time(14), "arrival_time": dt.time(15, 30),
            "time_with_pump": 30, "time_without_pump": 15, "fuel_refueled": D(20), "fuel_used": D(25)}
    a = await records.create_record(world.pool, FIRE_TRUCK, driver, {**trip, "odometer_after": 100090})
    assert (a["distance_km"], a["fuel_used_by_distance"], a["fuel_used_normal"]) == (90, D("59.13"), D("68.88"))
    await records.create_record(world.pool, FIRE_TRUCK, driver, {**trip, "odometer_after": 100100})
    before = await world.rows(FIRE_TRUCK.records, car_id=car), await world.rows(FIRE_TRUCK.snapshots, car_id=car)
    with pytest.raises(ApiError) as err:
        await records.update_record(world.engine, FIRE_TRUCK, driver, a["id"], {"odometer_after": 100200})
    assert err.value.status == 400 and "odometer_after" in err.value.fields
    assert err.value.fields["odometer_after"][0].startswith("Строка №")
    after = await world.rows(FIRE_TRUCK.records, car_id=car), await world.rows(FIRE_TRUCK.snapshots, car_id=car)
    assert after == before


async def test_negative_fuel_on_return_is_refused_on_create(world: World) -> None:
    driver = await world.driver(CREATE)
    car = await world.car(PASSENGER)
    waybill = await world.waybill(PASSENGER, car, driver)
    with pytest.raises(ApiError) as err:
        await records.create_record(world.pool, PASSENGER, driver, passenger_trip(waybill, refueled="0",
                                                                                    used="40.001"))
    assert err.value.status == 400 and set(err.value.fields) == {"fuel_used"}
    assert await world.rows(PASSENGER.records) == []
    assert len(await world.rows(PASSENGER.snapshots, car_id=car)) == 1


async def test_someone_elses_waybill_is_403_and_an_unseen_record_404(world: World) -> None:
    owner, other = await world.driver(CREATE), await world.driver(CREATE)
    car = await world.car(PASSENGER)
    waybill = await world.waybill(PASSENGER, car, owner)
    with pytest.raises(ApiError) as err:
        await records.create_record(world.pool, PASSENGER, other, passenger_trip(waybill))
    assert err.value.status == 403
    made = await records.create_record(world.pool, PASSENGER, owner, passenger_trip(waybill))
    with pytest.raises(ApiError) as err:
        await records.update_record(world.engine, PASSENGER, other, made["id"], {"target": "x"})
    assert err.value.status == 404


async def test_dropping_a_waybill_mends_interleaved_chains(world: World) -> None:
    driver = await world.driver(CREATE)
    car = await world.car(PASSENGER)
    gone, kept = await world.waybill(PASSENGER, car, driver), await world.waybill(PASSENGER, car, driver)
    for waybill in (gone, kept, gone, kept):
        # Zero-length trips that use nothing leave the next start unchanged; the walk must not stop there.
        trip = passenger_trip(waybill, city=0, refueled="0", used="0") if waybill == gone and \
            not await world.rows(PASSENGER.records, waybill_id=gone) else passenger_trip(waybill, city=5)
        await records.create_record(world.pool, PASSENGER, driver, trip)
    async with transaction(world.engine) as conn:
        row = (await conn.execute(select(PASSENGER.waybills).where(PASSENGER.waybills.c.id == gone))).mappings().one()
        await records.drop_waybill_records(conn, PASSENGER, row)
    chain = await assert_chain(world, PASSENGER, car)
    assert [r["waybill_id"] for r in chain] == [kept, kept]
    assert chain[1]["odometer_before"] == 100005
    await assert_waybill(world, PASSENGER, kept)
