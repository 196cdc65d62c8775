"""GET /api/ops/stats: the dashboard's plots read this instance's own counters."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.conftest import UserFactory


async def test_stats_need_the_dashboard_permission(client: TestClient, make_user: UserFactory) -> None:
    assert (await client.get("/api/ops/stats")).status == 401
    driver = await make_user(role="driver")
    assert (await client.get("/api/ops/stats", headers=driver.headers)).status == 403


async def test_stats_count_sockets_events_and_bookings(client: TestClient, make_user: UserFactory) -> None:
    admin = await make_user(role="admin")
    operator = await make_user(role="operator")
    customer = await make_user(role="client", name="Ivan", surname="Petrov", phone="+79001234500")
    car = await client.post("/api/passenger-cars/", headers=admin.headers, json={
        "number": "S900AA54", "brand": "Lada", "model": "Vesta", "shared": True, "lat": "55.03",
        "lon": "82.92", "fuel_level": "40", "tariff_per_minute": "7.5"})
    assert car.status == 201, await car.text()
    before = (await (await client.get("/api/ops/stats", headers=operator.headers)).json())["now"]
    async with client.ws_connect("/ws", headers=operator.headers):
        booked = await client.post("/api/bookings", json={"car": (await car.json())["id"]}, headers=customer.headers)
        assert booked.status == 201, await booked.text()
        resp = await client.get("/api/ops/stats", headers=operator.headers)
        assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
        body = await resp.json()
    now = body["now"]
    assert body["instance"] and body["interval"] > 0
    assert now["sockets"] == before["sockets"] + 1
    assert now["bookings"] == before["bookings"] + 1
    assert now["events_published"] > before["events_published"]       # car.updated, booking.created, …
    assert all(sample["t"] <= now["t"] for sample in body["samples"])
    later = await client.get(f"/api/ops/stats?since={now['t']}", headers=operator.headers)
    assert (await later.json())["samples"] == []
