"""The per-instance free-car list of GET /api/cars (backend/sharing/free_cars.py, issue 11).

Every change must reach the kept list of every instance through the `cars` events: these tests
warm the cache of both instances first, change a car through one, and read through the other.
"""

from __future__ import annotations

from aiohttp.test_utils import TestClient
from redis.asyncio import RedisCluster

from backend import keys
from backend.sharing.const import CARS
from tests.conftest import TestUser
from tests.sharing.conftest import CarFactory, add_car, booked
from tests.support import eventually


async def free_ids(client: TestClient) -> list[int]:
    resp = await client.get("/api/cars")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    return [car["id"] for car in await resp.json()]


async def test_a_booking_on_one_instance_leaves_the_list_of_the_other(
        two_apps: tuple[TestClient, TestClient], admin: TestUser, customer: TestUser) -> None:
    a, b = two_apps
    car = await add_car(a, admin)
    other = await add_car(a, admin)
    assert await free_ids(b) == [car["id"], other["id"]]     # both instances keep the list now
    assert await free_ids(a) == [car["id"], other["id"]]
    booking = await booked(a, customer, car["id"])
    assert await free_ids(b) == [other["id"]]
    assert await free_ids(a) == [other["id"]]
    cancelled = await a.post(f"/api/bookings/{booking['id']}/cancel", headers=customer.headers)
    assert cancelled.status == 200
    assert await free_ids(b) == [car["id"], other["id"]]


async def test_fleet_edits_and_new_cars_reach_the_kept_list(
        two_apps: tuple[TestClient, TestClient], admin: TestUser) -> None:
    a, b = two_apps
    car = await add_car(a, admin)
    assert await free_ids(b) == [car["id"]]
    added = await add_car(a, admin)
    assert await free_ids(b) == [car["id"], added["id"]]
    moved = await a.patch(f"/api/passenger-cars/{car['id']}/", json={"lat": "55.100000"}, headers=admin.headers)
    assert moved.status == 200
    cars = await (await b.get("/api/cars")).json()
    assert cars[0]["lat"] == "55.100000"
    hidden = await a.patch(f"/api/passenger-cars/{added['id']}/", json={"shared": False}, headers=admin.headers)
    assert hidden.status == 200
    assert await free_ids(b) == [car["id"]]


async def test_bbox_reads_bypass_the_kept_list(client: TestClient, make_car: CarFactory) -> None:
    car = await make_car(lat="55.030199", lon="82.920430")
    assert await free_ids(client) == [car["id"]]
    resp = await client.get("/api/cars", params={"bbox": "0,0,1,1"})
    assert await resp.json() == []


async def test_nothing_is_kept_while_events_cannot_be_heard(client: TestClient) -> None:
    """A list read while the bus is disconnected could miss the event that makes it stale."""
    cache = client.app[keys.FREE_CARS]
    calls = 0

    async def load() -> list[dict[str, object]]:
        nonlocal calls
        calls += 1
        return []

    bus = client.app[keys.BUS]
    bus.connected = False
    try:
        await cache.body(load)
        await cache.body(load)
    finally:
        bus.connected = True
    assert calls == 2
    await cache.body(load)
    await cache.body(load)
    assert calls == 3


async def test_a_read_overtaken_by_an_event_is_not_kept(client: TestClient) -> None:
    cache = client.app[keys.FREE_CARS]
    calls = 0

    async def load() -> list[dict[str, object]]:
        nonlocal calls
        calls += 1
        cache.push(b"")              # an event arrives while the read runs
        return []

    await cache.body(load)
    await cache.body(load)
    assert calls == 2


async def test_the_kept_list_is_served_only_within_the_pubsub_session_it_was_read_in(client: TestClient) -> None:
    """The bus's per-channel token (`Bus.session`), not a connected flag: a ClusterBus has one per
    shard link, so the list is kept on a cluster too (tests/cluster/test_suites.py), and a pub/sub
    connection lost and regained between two requests drops it (events may have been missed)."""
    cache, bus, redis = client.app[keys.FREE_CARS], client.app[keys.BUS], client.app[keys.REDIS]
    calls = 0

    async def load() -> list[dict[str, object]]:
        nonlocal calls
        calls += 1
        return []

    await cache.body(load)
    await cache.body(load)
    assert calls == 1
    before = bus.session(CARS)
    assert before is not None
    if isinstance(redis, RedisCluster):
        await redis.client_kill_filter(_type="pubsub", target_nodes=RedisCluster.PRIMARIES)
    else:
        await redis.client_kill_filter(_type="pubsub")
    await eventually(lambda: bus.session(CARS) not in (None, before))
    await cache.body(load)
    await cache.body(load)
    assert calls == 2
