"""Client management (SPEC §4.4, §11.13): list, approve, block, unblock, delete."""

from __future__ import annotations

import aiohttp
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from tests.conftest import TestUser, UserFactory
from tests.realtime.conftest import next_event
from tests.sharing.conftest import CarFactory, book, booked, car_row, subscribe

ROW_FIELDS = {"id", "login", "name", "surname", "last_name", "phone", "driver_license", "role", "deleted_at",
              "email", "client_status", "blocked_reason"}


async def expect_close(ws: aiohttp.ClientWebSocketResponse, code: int) -> None:
    while (message := await ws.receive(timeout=5)).type is WSMsgType.TEXT:
        pass
    assert message.type is WSMsgType.CLOSE and message.data == code, message


async def test_list_clients_by_status_and_role(client: TestClient, operator: TestUser, customer: TestUser,
                                               make_user: UserFactory) -> None:
    pending = await make_user(role="client", client_status="pending")
    driver = await make_user(role="driver")
    page = await (await client.get("/api/clients", headers=operator.headers)).json()
    assert [row["id"] for row in page["results"]] == [customer.id, pending.id]       # role client by default
    assert set(page["results"][0]) == ROW_FIELDS
    assert page["results"][0]["phone"] == "+79001234567"
    only = await client.get("/api/clients/", params={"status": "pending"}, headers=operator.headers)
    assert [row["id"] for row in (await only.json())["results"]] == [pending.id]
    drivers = await client.get("/api/clients", params={"role": "driver"}, headers=operator.headers)
    assert [row["id"] for row in (await drivers.json())["results"]] == [driver.id]
    assert (await client.get("/api/clients", headers=customer.headers)).status == 403


async def test_approve_lets_a_pending_client_book(client: TestClient, make_car: CarFactory,
                                                  operator: TestUser, make_user: UserFactory) -> None:
    pending = await make_user(role="client", client_status="pending")
    car = await make_car()
    assert (await book(client, pending, car["id"])).status == 403
    async with client.ws_connect("/ws", headers=operator.headers) as ws:
        await subscribe(ws, "dashboard")
        resp = await client.post(f"/api/clients/{pending.id}/approve", headers=operator.headers)
        assert resp.status == 200 and (await resp.json())["client_status"] == "approved"
        assert (await next_event(ws, "dashboard", "client.approved"))["id"] == pending.id
    assert (await book(client, pending, car["id"])).status == 201


async def test_block_cancels_the_reservation_and_signs_the_client_out(
        two_apps: tuple[TestClient, TestClient], make_car: CarFactory, customer: TestUser,
        operator: TestUser) -> None:
    a, b = two_apps
    car = await make_car()
    booking = await booked(a, customer, car["id"])
    async with b.ws_connect("/ws", headers=customer.headers) as own, \
            b.ws_connect("/ws", headers=operator.headers) as board:
        await subscribe(board, "dashboard")
        resp = await a.post(f"/api/clients/{customer.id}/block", json={"reason": "Долг за поездки"},
                            headers=operator.headers)
        assert resp.status == 200
        row = await resp.json()
        assert (row["client_status"], row["blocked_reason"]) == ("blocked", "Долг за поездки")
        cancelled = await next_event(own, f"user:{customer.id}", "booking.cancelled")
        assert cancelled["id"] == booking["id"]
        await expect_close(own, 4001)
        assert (await next_event(board, "dashboard", "client.blocked"))["id"] == customer.id
    assert (await car_row(a, car["id"]))["state"] == "available"
    assert (await a.get("/api/bookings", headers=customer.headers)).status == 401
    resp = await a.post(f"/api/clients/{customer.id}/unblock", headers=operator.headers)
    assert (await resp.json())["client_status"] == "approved" and (await resp.json())["blocked_reason"] is None


async def test_delete_is_soft_and_final(client: TestClient, make_car: CarFactory, customer: TestUser,
                                        operator: TestUser) -> None:
    car = await make_car()
    await booked(client, customer, car["id"])
    assert (await client.delete(f"/api/clients/{customer.id}", headers=operator.headers)).status == 204
    assert (await car_row(client, car["id"]))["state"] == "available"
    assert (await client.get("/api/bookings", headers=customer.headers)).status == 401
    page = await (await client.get("/api/clients", headers=operator.headers)).json()
    assert customer.id not in [row["id"] for row in page["results"]]
    assert (await client.delete(f"/api/clients/{customer.id}", headers=operator.headers)).status == 404
    assert (await client.post(f"/api/clients/{customer.id}/approve", headers=operator.headers)).status == 404


async def test_client_actions_need_the_right_and_a_reason(client: TestClient, customer: TestUser,
                                                          operator: TestUser, make_user: UserFactory) -> None:
    other = await make_user(role="client")
    for method, path in (("POST", "approve"), ("POST", "unblock"), ("POST", "block")):
        resp = await client.request(method, f"/api/clients/{other.id}/{path}", json={"reason": "x"},
                                    headers=customer.headers)
        assert resp.status == 403, path
    assert (await client.delete(f"/api/clients/{other.id}", headers=customer.headers)).status == 403
    for body in ({}, {"reason": ""}, {"reason": 5}):
        resp = await client.post(f"/api/clients/{other.id}/block", json=body, headers=operator.headers)
        assert resp.status == 400 and set(await resp.json()) == {"reason"}, body
    assert (await client.post("/api/clients/999999/approve", headers=operator.headers)).status == 404


async def test_blocking_through_api_users_frees_the_reserved_car(
        two_apps: tuple[TestClient, TestClient], make_car: CarFactory, admin: TestUser, customer: TestUser) -> None:
    """/api/users/ is another door to the same rule as /api/clients/{id}/block (SPEC §4.4)."""
    a, b = two_apps
    car = await make_car()
    booking = await booked(a, customer, car["id"])
    async with b.ws_connect("/ws") as public:
        await subscribe(public, "cars")
        resp = await a.patch(f"/api/users/{customer.id}/", json={"client_status": "blocked"}, headers=admin.headers)
        assert resp.status == 200
        assert (await next_event(public, "cars", "car.available"))["id"] == car["id"]
    seen = await a.get(f"/api/bookings/{booking['id']}", headers=admin.headers)
    assert (await seen.json())["status"] == "cancelled"
    assert (await car_row(a, car["id"]))["state"] == "available"
    assert (await a.get("/api/auth/me/", headers=customer.headers)).status == 401
