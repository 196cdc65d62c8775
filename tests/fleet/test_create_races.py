"""Adding a record while another writer holds the car (records.create_record on the raw pool, issue 11).

The statement that takes the car lock reads the chain in the same statement, so it may read it as
it was before the previous holder committed; the write compares what it read with the database and
reads again when they differ (backend/fleet/statements.py). Each test here holds the car lock in a
transaction of its own, lets a create wait on it, changes what the create read, commits, and checks
that the record was computed from the car as it is after that commit.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.db import transaction
from backend.errors import ApiError
from backend.fleet import issuance, records
from backend.fleet.kinds import FIRE_TRUCK, PASSENGER, Kind
from backend.fleet.snapshots import lock_car, lock_cars
from tests.conftest import UserFactory
from tests.fleet.checks import assert_chain, assert_waybill
from tests.fleet.conftest import Api, World, passenger_trip, record_body, seed_car, waybill_body

D = Decimal
CREATE = PASSENGER.create_flag


async def waiting_on_a_lock(world: World) -> None:
    """Return once some session of the test's database waits for a row lock (bounded)."""
    query = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                 "AND wait_event_type = 'Lock'")
    async with asyncio.timeout(10):
        while True:
            async with world.engine.connect() as conn:
                if (await conn.execute(query)).scalar_one():
                    return
            await asyncio.sleep(0.01)


@asynccontextmanager
async def holding(world: World, kind: Kind, *cars: int) -> AsyncIterator[AsyncConnection]:
    """A transaction holding the lock of `cars` (as every chain writer takes it) until the block ends."""
    async with transaction(world.engine) as conn:
        await lock_cars(conn, kind, cars)
        yield conn


async def blocked(world: World, create: Awaitable[Any]) -> asyncio.Task[Any]:
    """Start `create` and return once it waits for the car lock."""
    task = asyncio.ensure_future(create)
    await waiting_on_a_lock(world)
    assert not task.done()
    return task


async def test_a_snapshot_committed_while_waiting_is_the_start(world: World) -> None:
    driver = await world.driver(CREATE)
    car = await world.car(PASSENGER)
    waybill = await world.waybill(PASSENGER, car, driver)
    async with holding(world, PASSENGER, car):
        task = await blocked(world, records.create_record(world.pool, PASSENGER, driver, passenger_trip(waybill)))
        await world.snapshot(PASSENGER, car, 200000, D("5"))       # committed before the lock is released
    row = await task
    assert (row["odometer_before"], row["fuel_before_departure"], row["odometer_after"]) == (200000, D(5), 200050)
    assert (await assert_chain(world, PASSENGER, car))[-1]["id"] == row["id"]
    await assert_waybill(world, PASSENGER, waybill)


async def test_a_record_committed_while_waiting_counts_in_the_totals(world: World) -> None:
    driver = await world.driver(CREATE)
    car = await world.car(PASSENGER)
    waybill = await world.waybill(PASSENGER, car, driver)
    first = await records.create_record(world.pool, PASSENGER, driver, passenger_trip(waybill))
    async with holding(world, PASSENGER, car) as conn:
        task = await blocked(world, records.create_record(world.pool, PASSENGER, driver,
                                                          passenger_trip(waybill, used="1")))
        # What an edit of the first record does under the lock: new inputs, chain and totals recomputed.
        r = PASSENGER.records
        await conn.execute(update(r).where(r.c.id == first["id"]).values(fuel_used=D(3), updated_at=func.now()))
        changed = await records.recompute(conn, PASSENGER, car, first["snapshot_id"], first["snapshot_id"])
        await records.refresh_waybills(conn, PASSENGER, changed | {waybill})
    row = await task
    assert (row["odometer_before"], row["fuel_before_departure"]) == (100050, D(47))
    chain = await assert_chain(world, PASSENGER, car)
    assert [r["id"] for r in chain] == [first["id"], row["id"]]
    totals = await assert_waybill(world, PASSENGER, waybill)
    assert (totals["total_spent"], totals["total_received"]) == (D(4), D(20))


async def test_the_first_snapshot_committed_while_waiting_lets_the_record_in(world: World) -> None:
    """A refusal read before the lock is not final: the car had no snapshot, then got one."""
    driver = await world.driver(CREATE)
    car = await world.car(PASSENGER)
    waybill = await world.waybill(PASSENGER, car, driver)
    s = PASSENGER.snapshots
    async with transaction(world.engine) as conn:          # no snapshot left (the waybill keeps its upon_issuance)
        await conn.execute(update(s).where(s.c.car_id == car).values(deleted_at=func.now()))
    async with holding(world, PASSENGER, car):
        task = await blocked(world, records.create_record(world.pool, PASSENGER, driver, passenger_trip(waybill)))
        await world.snapshot(PASSENGER, car, 300000, D("30"))
    row = await task
    assert (row["odometer_before"], row["fuel_on_return"]) == (300000, D(32))


async def test_a_waybill_deleted_while_waiting_refuses_the_record(world: World) -> None:
    driver = await world.driver(CREATE)
    car = await world.car(PASSENGER)
    waybill = await world.waybill(PASSENGER, car, driver)
    w = PASSENGER.waybills
    async with holding(world, PASSENGER, car) as conn:
        task = await blocked(world, records.create_record(world.pool, PASSENGER, driver, passenger_trip(waybill)))
        row = (await conn.execute(select(w).where(w.c.id == waybill))).mappings().one()
        await records.drop_waybill_records(conn, PASSENGER, row)
        await conn.execute(update(w).where(w.c.id == waybill).values(deleted_at=func.now()))
    with pytest.raises(ApiError) as err:
        await task
    assert err.value.status == 400 and "удалён" in err.value.fields[PASSENGER.waybill_field][0]
    assert await world.rows(PASSENGER.records) == []
    assert len(await world.rows(PASSENGER.snapshots, car_id=car)) == 1


async def test_a_waybill_given_to_another_driver_while_waiting_is_403(world: World) -> None:
    driver, other = await world.driver(CREATE), await world.driver(CREATE)
    car = await world.car(PASSENGER)
    waybill = await world.waybill(PASSENGER, car, driver)
    w = PASSENGER.waybills
    async with holding(world, PASSENGER, car) as conn:
        task = await blocked(world, records.create_record(world.pool, PASSENGER, driver, passenger_trip(waybill)))
        await conn.execute(update(w).where(w.c.id == waybill).values(driver_id=other.user_id))
    with pytest.raises(ApiError) as err:
        await task
    assert err.value.status == 403
    assert await world.rows(PASSENGER.records) == []


async def test_a_waybill_moved_to_another_car_while_waiting_extends_that_cars_chain(world: World) -> None:
    driver = await world.driver(CREATE)
    car, other_car = await world.car(PASSENGER), await world.car(PASSENGER)
    await world.snapshot(PASSENGER, other_car, 500000, D("20"))
    waybill = await world.waybill(PASSENGER, car, driver)
    w = PASSENGER.waybills
    async with holding(world, PASSENGER, car, other_car) as conn:      # as WaybillResource moves one
        task = await blocked(world, records.create_record(world.pool, PASSENGER, driver, passenger_trip(waybill)))
        assert await lock_car(conn, PASSENGER, other_car)
        issued = await issuance.issue(conn, PASSENGER, other_car)
        await conn.execute(update(w).where(w.c.id == waybill).values(car_id=other_car, **issued))
    row = await task
    assert (row["car_id"], row["odometer_before"], row["fuel_before_departure"]) == (other_car, 500000, D(20))
    assert await assert_chain(world, PASSENGER, car) == []
    assert [r["id"] for r in await assert_chain(world, PASSENGER, other_car)] == [row["id"]]
    await assert_waybill(world, PASSENGER, waybill)


async def test_a_create_whose_waybill_moved_lets_go_of_the_old_car_before_waiting_for_the_new(
        world: World) -> None:
    """Lock order (records.py): a create must not wait for the new car while it holds the old one,
    or a writer holding the new car and wanting the old one deadlocks with it."""
    driver = await world.driver(CREATE)
    car, other_car = await world.car(PASSENGER), await world.car(PASSENGER)
    await world.snapshot(PASSENGER, other_car, 500000, D("20"))
    waybill = await world.waybill(PASSENGER, car, driver)
    w = PASSENGER.waybills
    async with transaction(world.engine) as third:
        await lock_car(third, PASSENGER, other_car)             # a writer busy with the new car
        third_pid = (await third.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        async with holding(world, PASSENGER, car) as conn:
            task = await blocked(world, records.create_record(world.pool, PASSENGER, driver, passenger_trip(waybill)))
            issued = await issuance.issue(conn, PASSENGER, other_car)
            await conn.execute(update(w).where(w.c.id == waybill).values(car_id=other_car, **issued))
        # The create now waits for the new car, behind `third` ...
        query = text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))")
        async with asyncio.timeout(10):
            while True:
                if (await third.execute(query, {"pid": third_pid})).scalar_one():
                    break
                await asyncio.sleep(0.01)
        # ... and `third` then needs the old car: free, or PostgreSQL would break a deadlock here.
        await third.execute(text("SET LOCAL lock_timeout = '5s'"))
        assert await lock_car(third, PASSENGER, car)
    row = await task
    assert (row["car_id"], row["odometer_before"], row["fuel_before_departure"]) == (other_car, 500000, D(20))
    assert [r["id"] for r in await assert_chain(world, PASSENGER, other_car)] == [row["id"]]
    await assert_waybill(world, PASSENGER, waybill)


async def test_a_fire_truck_record_waits_and_starts_after_the_commit(world: World) -> None:
    driver = await world.driver(FIRE_TRUCK.create_flag)
    car = await world.car(FIRE_TRUCK)
    waybill = await world.waybill(FIRE_TRUCK, car, driver, "winter")
    trip = {"waybill_id": waybill, "target": "", "departure_time": dt.time(14), "arrival_time": dt.time(15),
            "odometer_after": 100090, "time_with_pump": 30, "time_without_pump": 15, "fuel_refueled": D(20),
            "fuel_used": D(25)}
    async with holding(world, FIRE_TRUCK, car):
        task = await blocked(world, records.create_record(world.pool, FIRE_TRUCK, driver, trip))
        await world.snapshot(FIRE_TRUCK, car, 100050, D("100"))
    row = await task
    assert (row["odometer_before"], row["distance_km"], row["fuel_on_return"]) == (100050, 40, D(95))
    await assert_chain(world, FIRE_TRUCK, car)
    await assert_waybill(world, FIRE_TRUCK, waybill)


async def test_concurrent_posts_of_every_kind_over_two_instances(two_apps: tuple[TestClient, TestClient],
                                                                 make_user: UserFactory, world: World,
                                                                 kind: Kind) -> None:
    a, b = two_apps
    mechanic, driver = Api(a, await make_user(role="mechanic")), await make_user(role="driver")
    car = await seed_car(mechanic, kind)
    waybills = [(await mechanic.ok("POST", kind.path("waybills"), waybill_body(kind, car, driver.id), 201))["id"]
                for _ in range(2)]
    apis = [Api(a, driver), Api(b, driver)]
    # Fire trucks name the odometer: every trip ends at the same reading, so whichever comes first drives.
    made = await asyncio.gather(*(apis[i % 2].ok("POST", kind.path("records"), record_body(kind, waybills[i % 2]),
                                                 201) for i in range(12)))
    chain = await assert_chain(world, kind, car)
    assert sorted(r["id"] for r in chain) == sorted(r["id"] for r in made)
    for waybill in waybills:
        await assert_waybill(world, kind, waybill)


async def test_creates_waiting_on_a_busy_car_leave_the_hot_pool_to_authentication(
        make_client: Any, make_user: UserFactory, world: World) -> None:
    """Creates hold a hot-pool connection while they wait for the car lock (behind a long recompute,
    say); the pool serves every request's identity lookup too, so they may not take all of it."""
    client = await make_client(db_hot_pool_size=2)              # the smallest hot pool (app.py)
    mechanic, driver = Api(client, await make_user(role="mechanic")), Api(client, await make_user(role="driver"))
    car = await seed_car(mechanic, PASSENGER)
    waybill = (await driver.ok("POST", PASSENGER.path("waybills"), waybill_body(PASSENGER, car), 201))["id"]
    async with holding(world, PASSENGER, car):
        posts = [asyncio.ensure_future(driver.call("POST", PASSENGER.path("records"), record_body(PASSENGER, waybill)))
                 for _ in range(4)]
        await waiting_on_a_lock(world)
        async with asyncio.timeout(5):                          # not until the car is free
            me = await driver.ok("GET", "/api/auth/me/")
        assert me["id"] == driver.user.id and not any(post.done() for post in posts)
    assert [status for status, _ in await asyncio.gather(*posts)] == [201] * 4
    await assert_chain(world, PASSENGER, car)
