"""Cars edited through fleet's /api/passenger-cars/ reach `cars` and `dashboard` (SPEC §4.5, §11.12)."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from backend import keys
from tests.conftest import TestUser
from tests.realtime.conftest import next_event
from tests.sharing.conftest import CarFactory, booked, car_row, frames_until, subscribe


async def test_fleet_edits_publish_car_events_to_other_instances(
        two_apps: tuple[TestClient, TestClient], make_car: CarFactory, admin: TestUser, operator: TestUser) -> None:
    a, b = two_apps
    async with b.ws_connect("/ws") as public, b.ws_connect("/ws", headers=operator.headers) as board:
        await subscribe(public, "cars")
        await subscribe(board, "dashboard")
        car = await make_car(shared=False)                          # not bookable: nothing public
        assert (await next_event(board, "dashboard", "car.updated"))["id"] == car["id"]
        path = f"/api/passenger-cars/{car['id']}/"

        assert (await a.patch(path, json={"shared": True}, headers=admin.headers)).status == 200
        assert (await next_event(public, "cars", "car.available"))["id"] == car["id"]
        assert (await a.patch(path, json={"lat": "55.1", "lon": "82.8"}, headers=admin.headers)).status == 200
        moved = await next_event(public, "cars", "car.moved")
        assert (moved["id"], moved["lat"], moved["lon"]) == (car["id"], "55.100000", "82.800000")
        assert (await a.patch(path, json={"shared": False}, headers=admin.headers)).status == 200
        assert await next_event(public, "cars", "car.unavailable") == {"id": car["id"]}
        # A change that leaves a non-shared car private publishes nothing on `cars`.
        assert (await a.patch(path, json={"brand": "UAZ"}, headers=admin.headers)).status == 200
        await a.app[keys.BUS].publish("cars", "marker", {})
        assert await frames_until(public, "marker") == []


async def test_a_booked_car_cannot_be_deleted_a_free_one_leaves_the_map(
        two_apps: tuple[TestClient, TestClient], make_car: CarFactory, admin: TestUser, customer: TestUser) -> None:
    a, b = two_apps
    busy, free = await make_car(), await make_car()
    await booked(a, customer, busy["id"])
    refused = await a.delete(f"/api/passenger-cars/{busy['id']}/", headers=admin.headers)
    assert refused.status == 409 and (await refused.json())["code"] == "car_has_active_booking"
    assert (await car_row(a, busy["id"]))["deleted_at"] is None
    async with b.ws_connect("/ws") as public:
        await subscribe(public, "cars")
        assert (await a.delete(f"/api/passenger-cars/{free['id']}/", headers=admin.headers)).status == 204
        assert await next_event(public, "cars", "car.unavailable") == {"id": free["id"]}
