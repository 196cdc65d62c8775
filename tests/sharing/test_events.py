"""Events after commit (SPEC §4.5): `cars` for everyone, `dashboard` for operators, `user:{id}`."""

from __future__ import annotations

import datetime as dt

from aiohttp.test_utils import TestClient

from backend import keys
from backend.realtime.bus import Outbox
from backend.sharing.events import car_changed
from tests.conftest import TestUser
from tests.realtime.conftest import next_event
from tests.sharing.conftest import CarFactory, act, book, booked, frames_until, subscribe

PUBLIC = {"id", "brand", "model", "lat", "lon", "fuel_level", "tariff_per_minute"}
END = {"lat": "55.050000", "lon": "82.950000", "fuel_level": "20"}


async def test_cars_on_b_hear_a_booking_made_on_a_and_its_cancel(
        two_apps: tuple[TestClient, TestClient], make_car: CarFactory, customer: TestUser) -> None:
    a, b = two_apps
    car = await make_car()
    async with b.ws_connect("/ws") as ws:                  # anonymous: `cars` is public
        await subscribe(ws, "cars")
        booking = await booked(a, customer, car["id"])
        assert await next_event(ws, "cars", "car.unavailable") == {"id": car["id"]}
        assert (await act(a, customer, booking["id"], "cancel")).status == 200
        available = await next_event(ws, "cars", "car.available")
    assert set(available) == PUBLIC
    assert available == {"id": car["id"], "brand": "Lada", "model": "Vesta", "lat": "55.030199",
                         "lon": "82.920430", "fuel_level": "40.000", "tariff_per_minute": "7.500"}


async def test_dashboard_and_user_channels_follow_a_whole_trip(
        two_apps: tuple[TestClient, TestClient], make_car: CarFactory, customer: TestUser,
        operator: TestUser) -> None:
    a, b = two_apps
    car = await make_car()
    async with b.ws_connect("/ws", headers=operator.headers) as board, \
            b.ws_connect("/ws", headers=customer.headers) as own:
        await subscribe(board, "dashboard")
        booking = await booked(a, customer, car["id"])
        await act(a, customer, booking["id"], "start")
        finished = await (await act(a, customer, booking["id"], "finish", END)).json()
        await a.app[keys.BUS].publish("dashboard", "test.marker", {})
        await a.app[keys.BUS].publish(f"user:{customer.id}", "test.marker", {})
        on_board = [(f["event"], f["data"]) for f in await frames_until(board, "test.marker")]
        on_own = [(f["channel"], f["event"]) for f in await frames_until(own, "test.marker")]
    events = [name for name, _ in on_board]
    assert events == ["booking.created", "car.updated", "booking.started", "car.updated",
                      "booking.finished", "car.updated"]
    assert on_board[4][1] == finished
    last_car = on_board[5][1]
    assert (last_car["id"], last_car["state"], last_car["lat"], last_car["number"]) == (
        car["id"], "available", "55.050000", car["number"])
    assert on_own == [(f"user:{customer.id}", f"booking.{name}") for name in ("created", "started", "finished")]


async def test_a_refused_booking_publishes_nothing(client: TestClient, make_car: CarFactory,
                                                   customer: TestUser, operator: TestUser) -> None:
    car = await make_car(shared=False)
    async with client.ws_connect("/ws", headers=operator.headers) as ws:
        await subscribe(ws, "dashboard")
        await subscribe(ws, "cars", 2)
        assert (await book(client, customer, car["id"])).status == 409
        await client.app[keys.BUS].publish("dashboard", "test.marker", {})
        assert await frames_until(ws, "test.marker") == []


async def test_dashboard_needs_the_right(client: TestClient, customer: TestUser) -> None:
    async with client.ws_connect("/ws", headers=customer.headers) as ws:
        await ws.send_json({"type": "subscribe", "channel": "dashboard", "id": 1})
        assert (await ws.receive_json(timeout=5))["code"] == "forbidden"


def test_car_changes_map_to_public_events() -> None:
    """What fleet's /api/passenger-cars/ edits will announce through events.publish_car_change."""
    base = {"id": 1, "number": "A1", "brand": "Lada", "model": "Vesta", "shared": True, "state": "available",
            "lat": "55", "lon": "82", "fuel_level": "40", "tariff_per_minute": "7", "deleted_at": None,
            "state_changed_at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC)}

    def cars_events(after: dict, before: dict | None) -> list[str]:
        out = Outbox()
        car_changed(out, after, before)
        assert out.events[0][:2] == ("dashboard", "car.updated")
        return [event for channel, event, _ in out.events if channel == "cars"]

    assert cars_events({**base, "lat": "56"}, base) == ["car.moved"]
    assert cars_events({**base, "tariff_per_minute": "8"}, base) == ["car.available"]
    assert cars_events({**base, "number": "B2"}, base) == []
    assert cars_events({**base, "shared": False}, base) == ["car.unavailable"]
    assert cars_events(base, {**base, "shared": False}) == ["car.available"]
    assert cars_events({**base, "shared": False}, {**base, "shared": False, "lat": "1"}) == []
    assert cars_events(base, None) == ["car.available"]
    assert cars_events({**base, "deleted_at": base["state_changed_at"]}, None) == ["car.unavailable"]
