"""SIGKILL of an instance in the middle of bookings, fleet records, chat sends and CallUp orders
(issue 10): every transaction it had open is all-or-nothing, and what it left pending — reservations,
call orders — is swept by the instance that survives."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import random
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text

from backend import keys
from backend.callup import apps
from backend.config import Config
from backend.db import read
from backend.fleet.kinds import PASSENGER
from tests.conftest import AppFactory, UserFactory
from tests.faults.instances import (
    RECORD,
    Api,
    Hold,
    backends_in_transaction,
    booking_breaches,
    chat_breaches,
    client_ids_stored,
    fleet_car,
    instances,
    order_breaches,
    overlapping_holds,
    shared_car,
    statuses,
    waybill,
)
from tests.fleet.checks import assert_chain, assert_waybill
from tests.fleet.conftest import World
from tests.support import eventually

RESERVATION_TTL = 2.0
# Connection failures that mean "the instance is gone": each load loop stops on the first one.
GONE = (aiohttp.ClientError, ConnectionError, asyncio.TimeoutError)


def when(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()


async def until_gone(step: Callable[[], Awaitable[None]]) -> None:
    """Run `step` again and again until the instance under it dies."""
    try:
        while True:
            await step()
    except GONE:
        return


@pytest.mark.slow
async def test_sigkill_mid_writes_leaves_whole_transactions_and_the_survivor_sweeps(
        make_client: AppFactory, make_user: UserFactory, config: Config) -> None:
    survivor = await make_client(sweep_interval=0.2, callup_call_timeout=1.0)
    db = survivor.app[keys.DB]
    base = str(survivor.make_url("")).rstrip("/")
    admin, bookers = await make_user(role="admin"), [await make_user(role="client") for _ in range(6)]
    drivers = [await make_user(role="driver") for _ in range(4)]
    talkers = [await make_user(role="client") for _ in range(6)]
    callup_app = await apps.create(db, "fault app")
    # The victim never sweeps (its one pass at start finds nothing) and never completes a call: what it
    # leaves pending can only be finished by the survivor.
    env = {"RESERVATION_TTL": RESERVATION_TTL, "SWEEP_INTERVAL": 3600, "CALLUP_SIM_DELAY": 60,
           "CALLUP_CODE_TTL": 4, "CALLUP_APP_RATE": "10000/60", "CALLUP_PHONE_LIMIT": "100/600"}
    async with aiohttp.ClientSession() as http, instances(config, 1, **env) as (victim,):
        api = Api(http, admin.headers)
        cars = [await shared_car(api, base) for _ in range(4)]
        fleet = [await fleet_car(api, base) for _ in range(2)]
        waybills = [await waybill(api, base, fleet[i % 2], d.id) for i, d in enumerate(drivers)]
        chats = [(await Api(http, a.headers).call("POST", f"{base}/chats", {"user_id": b.id}))["id"]
                 for a, b in zip(talkers[::2], talkers[1::2], strict=True)]
        # A reservation made on the victim and never let go: only the survivor can expire it.
        held = await Api(http, bookers[0].headers).call("POST", f"{victim.url}/api/bookings",
                                                        {"car": cars[0]}, expect=201)

        holds: list[Hold] = [Hold(cars[0], held["id"], time.time(), when(held["reserved_until"]))]
        records: list[int] = []
        sent: dict[str, tuple[int, Any]] = {}      # client_id → (chat, sender's headers)
        acked: list[str] = []
        orders: list[str] = []
        phones = itertools.count(79000000000)

        def booker(user: Any) -> Callable[[], Awaitable[None]]:
            client = Api(http, user.headers)

            async def step() -> None:
                car = random.choice(cars[1:])
                async with http.post(f"{victim.url}/api/bookings", json={"car": car}, headers=user.headers) as resp:
                    booking = await resp.json()
                if resp.status != 201:
                    assert resp.status == 409, booking
                    return
                hold = Hold(car, booking["id"], time.time(), when(booking["reserved_until"]))
                holds.append(hold)
                await asyncio.sleep(random.uniform(0, 0.05))
                hold.until = min(hold.until, time.time())   # from here on the client has let go
                await client.call("POST", f"{victim.url}/api/bookings/{booking['id']}/cancel", {},
                                  expect=(200, 409))
            return step

        def driver(user: Any, waybill_id: int) -> Callable[[], Awaitable[None]]:
            client = Api(http, user.headers)

            async def step() -> None:
                record = await client.call("POST", f"{victim.url}/api/passenger-car-records/",
                                           {**RECORD, "passenger_car_waybill": waybill_id}, expect=201)
                records.append(record["id"])
            return step

        async def talker(user: Any, chat: int) -> None:
            try:
                async with http.ws_connect(victim.ws_url, headers=user.headers) as ws:
                    for n in itertools.count():
                        client_id = uuid.uuid4().hex
                        sent[client_id] = (chat, user.headers)
                        await ws.send_json({"type": "send", "chat_id": chat, "text": f"m{n}",
                                            "client_id": client_id, "id": n})
                        while True:
                            message = await ws.receive(timeout=10)
                            if message.type is not aiohttp.WSMsgType.TEXT:
                                return                  # the instance died under the socket
                            frame = message.json()
                            if frame.get("type") == "ack" and frame["id"] == n:
                                assert frame["message"]["client_id"] == client_id
                                acked.append(client_id)
                                break
            except GONE:
                return

        async def order() -> None:
            async with http.post(f"{victim.url}/v1/orders", json={"phone": str(next(phones))},
                                 headers={"X-Application-Token": str(callup_app["token"])}) as resp:
                body = await resp.json()
                assert resp.status == 200, body
                orders.append(body["data"]["id"])

        load = [asyncio.create_task(until_gone(booker(user))) for user in bookers[1:]]
        load += [asyncio.create_task(until_gone(driver(d, w))) for d, w in zip(drivers, waybills, strict=True)]
        load += [asyncio.create_task(talker(a, chat)) for a, chat in zip(talkers[::2], chats, strict=True)]
        load += [asyncio.create_task(until_gone(order)) for _ in range(2)]

        async def under_way() -> None:
            for task in load:
                if task.done():
                    task.result()               # a load loop that failed fails the test with its error
            assert len(holds) > 3 and len(records) >= 4 and len(acked) >= 3 and len(orders) >= 2
            # Kill while the victim is inside a transaction, so the kill cuts one in half.
            assert await backends_in_transaction(db, victim.proc.pid, config.database_url or "") > 0

        await eventually(under_way, timeout=15, interval=0.01)
        victim.proc.send_signal(signal.SIGKILL)
        async with asyncio.timeout(15):
            await asyncio.gather(*load)
        await asyncio.to_thread(victim.proc.wait, 10)

        # All-or-nothing: no car busy without its booking or free with one; no message without its chat
        # row; no order without its transition.
        assert await booking_breaches(db) == []
        assert await chat_breaches(db) == []
        assert await order_breaches(db) == []

        # Every answered write is stored.
        async with read(db) as conn:
            stored_bookings = set((await conn.execute(text("SELECT id FROM bookings"))).scalars())
            stored_records = set((await conn.execute(text("SELECT id FROM passenger_car_records"))).scalars())
            stored_orders = {str(o) for o in (await conn.execute(text("SELECT id FROM call_orders"))).scalars()}
        assert {h.booking for h in holds} <= stored_bookings
        assert set(records) <= stored_records
        assert set(orders) <= stored_orders
        assert overlapping_holds(holds) == []

        # Fleet chains: every record starts where the previous one ended, every waybill sums up.
        world = World(db)
        for car in fleet:
            await assert_chain(world, PASSENGER, car)
        for waybill_id in waybills:
            await assert_waybill(world, PASSENGER, waybill_id)

        # Chat: each acknowledged message once; a client resending the unacknowledged ones elsewhere
        # (same client_id) ends with every message stored exactly once.
        stored = await client_ids_stored(db)
        assert all(stored.get(client_id) == 1 for client_id in acked), [c for c in acked if stored.get(c) != 1]
        for client_id, (chat, headers) in sent.items():
            if client_id not in acked:
                await Api(http, headers).call("POST", f"{base}/chats/{chat}/messages",
                                              {"text": "again", "client_id": client_id})
        stored = await client_ids_stored(db)
        assert {client_id: stored.get(client_id) for client_id in sent} == dict.fromkeys(sent, 1)
        assert await chat_breaches(db) == []

        # What the victim left pending is finished by the survivor's sweepers.
        async def swept() -> None:
            bookings_now = await statuses(db, "bookings")
            assert "reserved" not in bookings_now, bookings_now
            orders_now = await statuses(db, "call_orders")
            assert not {"created", "calling"} & set(orders_now), orders_now

        await eventually(swept, timeout=RESERVATION_TTL + 8)
        async with read(db) as conn:
            held_now = (await conn.execute(text("SELECT status FROM bookings WHERE id = :id"),
                                           {"id": held["id"]})).scalar_one()
            states = set((await conn.execute(text("SELECT state FROM passenger_cars WHERE shared"))).scalars())
        assert held_now == "expired" and states == {"available"}
        assert await booking_breaches(db) == [] and await order_breaches(db) == []
