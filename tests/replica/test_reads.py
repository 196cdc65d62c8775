"""Lag-tolerant reads on a real streaming replica, everything else on the primary (SPEC §13.2).

The replica's WAL replay is paused to make it visibly behind: a row written through the API is
then missing from exactly the reads that go to the replica and present in those that must not.
"""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient
from sqlalchemy import text

from backend import keys
from backend.db import read, transaction
from tests.chat.conftest import open_chat, send
from tests.conftest import TestUser, UserFactory
from tests.replica.conftest import Standby, answered_by_replica, lose_replica_under
from tests.sharing.conftest import add_car
from tests.support import eventually


async def test_lag_tolerant_reads_use_the_replica_writes_and_plain_reads_the_primary(probed: TestClient) -> None:
    async def check() -> tuple[bool, bool, bool]:
        db = probed.app[keys.DB]
        async with read(db, lag_ok=True) as conn:
            lagging = await conn.scalar(text("SELECT pg_is_in_recovery()"))
        async with read(db) as conn:
            plain = await conn.scalar(text("SELECT pg_is_in_recovery()"))
        async with transaction(db) as conn:
            written = await conn.scalar(text("SELECT pg_is_in_recovery()"))
        return lagging, plain, written

    # A task of its own, like a request: the transaction above pins only that task to the primary.
    assert await asyncio.create_task(check()) == (True, False, False)
    assert await answered_by_replica(probed)


async def test_a_request_that_wrote_reads_its_own_write_from_the_primary(probed: TestClient) -> None:
    assert await answered_by_replica(probed, write=1) is False
    # The next request on the same keep-alive connection is a new task: back on the replica.
    assert await answered_by_replica(probed) is True


async def test_public_cars_snapshots_chat_history_and_fleet_lists_come_from_the_replica(
        client: TestClient, standby: Standby, admin: TestUser, make_user: UserFactory) -> None:
    alice, bob = await make_user(role="client"), await make_user(role="client")
    chat = await open_chat(client, alice, bob)

    async def seen() -> tuple[set[int], set[int], set[int]]:
        cars = await client.get("/api/cars")
        history = await client.get(f"/chats/{chat['id']}/messages", headers=alice.headers)
        fleet = await client.get("/api/passenger-cars/", params={"limit": 100}, headers=admin.headers)
        assert (cars.status, history.status, fleet.status) == (200, 200, 200)
        return ({car["id"] for car in await cars.json()},
                {m["id"] for m in (await history.json())["messages"]},
                {car["id"] for car in (await fleet.json())["results"]})

    await eventually(lambda: seen())         # the chat itself has reached the replica
    await standby.pause_replay()
    try:
        car = await add_car(client, admin)                  # the write answers from the primary
        message = await send(client, alice, chat["id"], "behind the replica")
        cars, history, fleet = await seen()
        assert car["id"] not in cars and car["id"] not in fleet and message["id"] not in history
        async with client.ws_connect("/ws") as ws:          # the `cars` snapshot too (anonymous socket)
            await ws.send_json({"type": "subscribe", "channel": "cars", "id": 1})
            reply = await ws.receive_json(timeout=5)
            assert reply["type"] == "subscribed" and car["id"] not in {c["id"] for c in reply["snapshot"]}
        got = await client.get(f"/api/passenger-cars/{car['id']}/", headers=admin.headers)
        assert got.status == 200                            # one item by id: the primary's
    finally:
        await standby.resume_replay()

    async def caught_up() -> None:
        cars, history, fleet = await seen()
        assert car["id"] in cars and car["id"] in fleet and message["id"] in history
    await eventually(caught_up)


async def test_a_lost_replica_falls_back_to_the_primary_then_comes_back(
        probed: TestClient, standby: Standby, admin: TestUser) -> None:
    assert await answered_by_replica(probed)                # a pooled replica connection exists
    standby.stop()
    try:
        car = await add_car(probed, admin)
        cars = await probed.get("/api/cars")
        assert cars.status == 200 and car["id"] in {c["id"] for c in await cars.json()}
        assert await answered_by_replica(probed) is False
    finally:
        standby.start()

    async def back() -> None:
        assert await answered_by_replica(probed), "still reading from the primary"
    await eventually(back, timeout=10)


async def test_a_replica_lost_under_a_running_read_repeats_it_on_the_primary(
        probed: TestClient, standby: Standby) -> None:
    assert await answered_by_replica(probed)
    assert await lose_replica_under(standby, answered_by_replica(probed, pause=5)) is False   # the primary answered
