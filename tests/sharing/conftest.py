"""Car-sharing fixtures: shared cars made through /api/passenger-cars/, users of each role,
websocket event helpers with bounded waits."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select, text

from backend import keys
from backend.db import read, transaction
from backend.sharing.tables import bookings
from tests.conftest import TestUser, UserFactory

_numbers = itertools.count(1)
CarFactory = Callable[..., Awaitable[dict[str, Any]]]
WAIT = 5.0          # every wait of these tests is bounded; none sleeps "to give time"


async def add_car(client: TestClient, admin: TestUser, **fields: Any) -> dict[str, Any]:
    """A passenger car through the fleet API; shared and priced unless told otherwise."""
    body = {"number": f"S{next(_numbers):03d}AA54", "brand": "Lada", "model": "Vesta", "shared": True,
            "lat": "55.030199", "lon": "82.920430", "fuel_level": "40", "tariff_per_minute": "7.5", **fields}
    resp = await client.post("/api/passenger-cars/", json=body, headers=admin.headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()


@pytest.fixture
def make_car(client: TestClient, admin: TestUser) -> CarFactory:
    async def make(**fields: Any) -> dict[str, Any]:
        return await add_car(client, admin, **fields)
    return make


@pytest.fixture
async def customer(make_user: UserFactory) -> TestUser:
    """An approved client (role `client`: can_book_cars, can_use_mobile_booking)."""
    return await make_user(role="client", name="Ivan", surname="Petrov", phone="+79001234567")


@pytest.fixture
async def operator(make_user: UserFactory) -> TestUser:
    """can_manage_fleet, can_manage_clients, can_view_dashboard."""
    return await make_user(role="operator")


async def book(client: TestClient, user: TestUser, car_id: int) -> aiohttp.ClientResponse:
    return await client.post("/api/bookings", json={"car": car_id}, headers=user.headers)


async def booked(client: TestClient, user: TestUser, car_id: int) -> dict[str, Any]:
    resp = await book(client, user, car_id)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def act(client: TestClient, user: TestUser, booking_id: int, action: str,
              body: dict[str, Any] | None = None) -> aiohttp.ClientResponse:
    return await client.post(f"/api/bookings/{booking_id}/{action}", json=body or {}, headers=user.headers)


async def car_row(client: TestClient, car_id: int) -> dict[str, Any]:
    async with read(client.app[keys.DB]) as conn:
        row = (await conn.execute(text("SELECT * FROM passenger_cars WHERE id = :id"), {"id": car_id})).mappings()
        return dict(row.one())


async def booking_count(client: TestClient) -> int:
    async with read(client.app[keys.DB]) as conn:
        return int((await conn.execute(select(func.count()).select_from(bookings))).scalar_one())


async def run_sql(client: TestClient, sql: str, **params: Any) -> None:
    """Arrange a state the API would take minutes to reach (a trip started long ago)."""
    async with transaction(client.app[keys.DB]) as conn:
        await conn.execute(text(sql), params)


async def subscribe(ws: aiohttp.ClientWebSocketResponse, channel: str, frame_id: int = 1) -> dict[str, Any]:
    await ws.send_json({"type": "subscribe", "channel": channel, "id": frame_id})
    reply = await ws.receive_json(timeout=5)
    assert reply["type"] == "subscribed", reply
    return reply


async def frames_until(ws: aiohttp.ClientWebSocketResponse, event: str) -> list[dict[str, Any]]:
    """Every event frame before the first `event` (a marker published last), bounded by WAIT."""
    seen = []
    async with asyncio.timeout(WAIT):
        while (frame := await ws.receive_json()).get("event") != event:
            seen.append(frame)
    return seen
