"""No double booking under any interleaving, across instances (SPEC §4.3 race-free)."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient
from sqlalchemy import func, insert, select, text

from backend import keys
from backend.db import read
from backend.sharing.tables import bookings
from tests.conftest import TestUser, UserFactory
from tests.sharing.conftest import CarFactory, act, book, booked, car_row
from tests.support import eventually


async def test_ten_clients_one_car_two_instances_exactly_one_wins(
        two_apps: tuple[TestClient, TestClient], make_car: CarFactory, make_user: UserFactory) -> None:
    a, b = two_apps
    car = await make_car()
    users = [await make_user(role="client") for _ in range(10)]
    answers = await asyncio.gather(*(book(a if i % 2 else b, user, car["id"]) for i, user in enumerate(users)))
    statuses = sorted(resp.status for resp in answers)
    assert statuses == [201] + [409] * 9
    codes = {(await resp.json())["code"] for resp in answers if resp.status == 409}
    assert codes == {"car_not_available"}
    async with read(a.app[keys.DB]) as conn:
        rows = (await conn.execute(select(bookings.c.user_id).where(bookings.c.car_id == car["id"]))).all()
    winner = next(i for i, resp in enumerate(answers) if resp.status == 201)
    assert [row.user_id for row in rows] == [users[winner].id]
    assert (await car_row(a, car["id"]))["state"] == "reserved"


async def test_one_client_two_cars_at_once_gets_one(two_apps: tuple[TestClient, TestClient],
                                                    make_car: CarFactory, customer: TestUser) -> None:
    a, b = two_apps
    first, second = await make_car(), await make_car()
    for _ in range(5):     # several rounds: the interleavings differ from run to run
        answers = await asyncio.gather(book(a, customer, first["id"]), book(b, customer, second["id"]))
        assert sorted(resp.status for resp in answers) == [201, 409]
        loser = next(resp for resp in answers if resp.status == 409)
        assert (await loser.json())["code"] == "active_booking_exists"
        winner = await next(resp for resp in answers if resp.status == 201).json()
        states = {(await car_row(a, car["id"]))["state"] for car in (first, second)}
        assert states == {"reserved", "available"}        # the loser's car was not left taken
        assert (await act(a, customer, winner["id"], "cancel")).status == 200


async def test_start_and_cancel_race_one_wins(two_apps: tuple[TestClient, TestClient], make_car: CarFactory,
                                              customer: TestUser, operator: TestUser) -> None:
    a, b = two_apps
    car = await make_car()
    for _ in range(5):
        booking = await booked(a, customer, car["id"])
        started, cancelled = await asyncio.gather(act(a, customer, booking["id"], "start"),
                                                  act(b, operator, booking["id"], "cancel"))
        assert sorted((started.status, cancelled.status)) == [200, 409]
        state = (await car_row(a, car["id"]))["state"]
        if started.status == 200:
            assert state == "in_trip"
            await act(a, customer, booking["id"], "finish", {"lat": "55", "lon": "82", "fuel_level": "10"})
        else:
            assert state == "available"


async def test_cancels_and_a_new_reservation_at_once_leave_one_consistent_car(
        two_apps: tuple[TestClient, TestClient], make_car: CarFactory, customer: TestUser, operator: TestUser,
        make_user: UserFactory) -> None:
    """A cancel is one statement (booking closed, car freed): the owner and an operator cancelling on
    two instances while another client tries the car never leave a freed car with a live booking."""
    a, b = two_apps
    car = await make_car()
    rival = await make_user(role="client")
    for attempt in range(5):
        booking = await booked(a, customer, car["id"])
        mine, theirs, grab = await asyncio.gather(act(a, customer, booking["id"], "cancel"),
                                                  act(b, operator, booking["id"], "cancel"),
                                                  book(b if attempt % 2 else a, rival, car["id"]))
        assert sorted((mine.status, theirs.status)) == [200, 409]
        winner = mine if mine.status == 200 else theirs
        cancelled = await winner.json()
        assert cancelled["status"] == "cancelled" and cancelled["id"] == booking["id"]
        state = (await car_row(a, car["id"]))["state"]
        if grab.status == 201:                    # it came after the cancel: the car is its now
            assert state == "reserved"
            assert (await act(b, rival, (await grab.json())["id"], "cancel")).status == 200
        else:
            assert grab.status == 409 and state == "available"
        assert (await car_row(a, car["id"]))["state"] == "available"


async def test_the_unique_index_settles_what_the_checks_cannot_see(
        client: TestClient, make_car: CarFactory, customer: TestUser) -> None:
    """A second active booking committed while a reservation is under way: the index refuses it."""
    first, second = await make_car(), await make_car()
    engine = client.app[keys.DB]
    async with engine.connect() as other:
        tx = await other.begin()
        await other.execute(insert(bookings).values(car_id=second["id"], user_id=customer.id,
                                                    status="reserved", reserved_until=func.now()))
        # The reservation cannot see the uncommitted row, passes its check and waits on the index.
        attempt = asyncio.ensure_future(book(client, customer, first["id"]))
        await until_blocked_on_a_lock(client)
        await tx.commit()
        resp = await asyncio.wait_for(attempt, 5)
    assert resp.status == 409 and (await resp.json())["code"] == "active_booking_exists"
    assert (await car_row(client, first["id"]))["state"] == "available"      # rolled back with it


async def until_blocked_on_a_lock(client: TestClient) -> None:
    query = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                 " AND wait_event_type = 'Lock'")

    async def waiting() -> None:
        async with read(client.app[keys.DB]) as conn:
            assert (await conn.execute(query)).scalar_one(), "the reservation never waited"

    await eventually(waiting, interval=0.01)
