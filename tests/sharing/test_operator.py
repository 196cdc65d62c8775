"""Operators' car view and state switch (SPEC §4.2, §11.12, §11.15)."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from backend import keys
from tests.conftest import TestUser, UserFactory
from tests.realtime.conftest import next_event
from tests.sharing.conftest import CarFactory, act, book, booked, frames_until, subscribe

CAR_FIELDS = {"id", "number", "brand", "model", "shared", "lat", "lon", "fuel_level", "tariff_per_minute",
              "state", "state_changed_at", "deleted_at", "booking", "client"}


async def test_operators_see_every_car_with_booking_and_client(
        client: TestClient, make_car: CarFactory, customer: TestUser, operator: TestUser,
        make_user: UserFactory) -> None:
    free, taken, private = await make_car(), await make_car(), await make_car(shared=False)
    booking = await booked(client, customer, taken["id"])
    resp = await client.get("/api/operator/cars", headers=operator.headers)
    assert resp.status == 200
    page = await resp.json()
    assert page["count"] == 3 and [c["id"] for c in page["results"]] == [free["id"], taken["id"], private["id"]]
    rows = {c["id"]: c for c in page["results"]}
    assert all(set(row) == CAR_FIELDS for row in rows.values())
    assert rows[free["id"]]["booking"] is None and rows[free["id"]]["client"] is None
    assert rows[taken["id"]]["state"] == "reserved" and rows[taken["id"]]["number"] == taken["number"]
    assert rows[taken["id"]]["booking"]["id"] == booking["id"]
    assert rows[taken["id"]]["client"] == {"id": customer.id, "login": customer.login, "name": "Ivan",
                                           "surname": "Petrov", "last_name": "", "phone": "+79001234567"}
    # A mechanic (fleet only) sees who holds the car but not the phone (SPEC §2.1, §11.15).
    mechanic = await make_user(role="mechanic")
    rows = {c["id"]: c for c in (await (await client.get("/api/operator/cars/", headers=mechanic.headers)
                                        ).json())["results"]}
    assert rows[taken["id"]]["client"]["name"] == "Ivan" and rows[taken["id"]]["client"]["phone"] is None
    filtered = await client.get("/api/operator/cars", params={"state": "reserved"}, headers=operator.headers)
    assert [c["id"] for c in (await filtered.json())["results"]] == [taken["id"]]
    paged = await (await client.get("/api/operator/cars", params={"limit": 2, "offset": 1},
                                    headers=operator.headers)).json()
    assert [c["id"] for c in paged["results"]] == [taken["id"], private["id"]] and paged["previous"]
    assert (await client.get("/api/operator/cars", headers=customer.headers)).status == 403
    assert (await client.get("/api/operator/cars")).status == 401


async def test_maintenance_and_back(client: TestClient, make_car: CarFactory, customer: TestUser,
                                    operator: TestUser) -> None:
    car = await make_car()
    path = f"/api/operator/cars/{car['id']}/state"
    async with client.ws_connect("/ws") as ws:
        await subscribe(ws, "cars")
        resp = await client.post(path, json={"state": "maintenance"}, headers=operator.headers)
        assert resp.status == 200
        body = await resp.json()
        assert (body["id"], body["state"], body["booking"]) == (car["id"], "maintenance", None)
        assert body["state_changed_at"] > car["state_changed_at"]
        assert await next_event(ws, "cars", "car.unavailable") == {"id": car["id"]}
        assert (await book(client, customer, car["id"])).status == 409
        # The same state again changes nothing and announces nothing.
        assert (await client.post(path, json={"state": "maintenance"}, headers=operator.headers)).status == 200
        resp = await client.post(path, json={"state": "available"}, headers=operator.headers)
        assert (await resp.json())["state"] == "available"
        assert (await next_event(ws, "cars", "car.available"))["id"] == car["id"]
        await client.app[keys.BUS].publish("cars", "test.marker", {})
        assert await frames_until(ws, "test.marker") == []


async def test_state_is_refused_while_a_booking_holds_the_car(
        client: TestClient, make_car: CarFactory, customer: TestUser, operator: TestUser) -> None:
    car = await make_car()
    booking = await booked(client, customer, car["id"])
    path = f"/api/operator/cars/{car['id']}/state"
    for state in ("maintenance", "available"):
        resp = await client.post(path, json={"state": state}, headers=operator.headers)
        assert resp.status == 409 and (await resp.json())["code"] == "car_has_active_booking"
    await act(client, customer, booking["id"], "start")
    assert (await client.post(path, json={"state": "maintenance"}, headers=operator.headers)).status == 409


async def test_state_rights_and_bodies(client: TestClient, make_car: CarFactory, customer: TestUser,
                                       operator: TestUser, make_user: UserFactory, admin: TestUser) -> None:
    car = await make_car()
    path = f"/api/operator/cars/{car['id']}/state"
    assert (await client.post(path, json={"state": "maintenance"}, headers=customer.headers)).status == 403
    mechanic = await make_user(role="mechanic")
    assert (await client.post(path, json={"state": "maintenance"}, headers=mechanic.headers)).status == 200
    for body in ({"state": "reserved"}, {"state": "in_trip"}, {}, {"state": 1}):
        resp = await client.post(path, json=body, headers=operator.headers)
        assert resp.status == 400 and set(await resp.json()) == {"state"}, body
    assert (await client.delete(f"/api/passenger-cars/{car['id']}/", headers=admin.headers)).status == 204
    assert (await client.post(path, json={"state": "available"}, headers=operator.headers)).status == 404
