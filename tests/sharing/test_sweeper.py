"""The reservation sweeper (SPEC §4.3, §11.1): every instance sweeps, each booking expires once."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient

from backend import keys
from tests.conftest import AppFactory, TestUser, UserFactory
from tests.realtime.conftest import next_event
from tests.sharing.conftest import add_car, book, car_row, frames_until, subscribe
from tests.support import eventually


def passes(client: TestClient) -> float:
    return client.app[keys.METRICS].registry.get_sample_value("reservation_sweeps_total") or 0.0


def expired(client: TestClient) -> float:
    return client.app[keys.METRICS].registry.get_sample_value("reservations_expired_total") or 0.0


async def test_two_sweepers_expire_a_reservation_exactly_once(make_client: AppFactory, admin: TestUser,
                                                              make_user: UserFactory) -> None:
    a = await make_client(reservation_ttl=0.3, sweep_interval=0.02)
    b = await make_client(reservation_ttl=0.3, sweep_interval=0.02)
    car = await add_car(a, admin)
    user = await make_user(role="client")
    operator = await make_user(role="operator")
    async with b.ws_connect("/ws", headers=operator.headers) as ws:
        await subscribe(ws, "dashboard")
        await subscribe(ws, "cars", 2)
        resp = await book(a, user, car["id"])
        assert resp.status == 201
        booking = await resp.json()
        assert await next_event(ws, "cars", "car.unavailable") == {"id": car["id"]}
        gone = await next_event(ws, "dashboard", "booking.expired")
        assert (gone["id"], gone["status"]) == (booking["id"], "expired")
        # Both sweepers complete two more passes; a second expiry would have been published by then,
        # and Redis delivers it before the marker published after them.
        seen = {app: passes(app) for app in (a, b)}
        await eventually(lambda: all(passes(app) >= seen[app] + 2 for app in (a, b)))
        await a.app[keys.BUS].publish("dashboard", "test.marker", {})
        later = await frames_until(ws, "test.marker")
    names = [(f["channel"], f["event"]) for f in later]
    assert ("dashboard", "booking.expired") not in names
    assert names.count(("cars", "car.available")) == 1 and names.count(("dashboard", "car.updated")) == 1
    assert expired(a) + expired(b) == 1
    assert (await car_row(a, car["id"]))["state"] == "available"
    again = await book(b, user, car["id"])                   # the client may book again
    assert again.status == 201


async def test_the_sweeper_leaves_trips_and_live_reservations_alone(
        make_client: AppFactory, admin: TestUser, make_user: UserFactory) -> None:
    app = await make_client(sweep_interval=0.02)           # default TTL: 15 minutes
    car = await add_car(app, admin)
    user = await make_user(role="client")
    assert (await book(app, user, car["id"])).status == 201
    seen = passes(app)
    await eventually(lambda: passes(app) >= seen + 3)
    assert (await car_row(app, car["id"]))["state"] == "reserved"
    assert expired(app) == 0


def sweepers() -> set[asyncio.Task[object]]:
    return {task for task in asyncio.all_tasks() if task.get_name() == "reservation-sweeper"}


async def test_the_sweeper_stops_with_the_app(make_client: AppFactory) -> None:
    before = sweepers()
    app = await make_client(sweep_interval=0.02)
    (mine,) = sweepers() - before
    await app.close()                      # runs the cleanup contexts
    assert mine.done()
