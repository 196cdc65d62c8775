"""Redis restarted under live websocket subscriptions and traffic (SPEC §8.4, issue 10).

Two instances on a private Valkey (AOF on, like the embedded one `run.py` starts), subscribers on
every kind of channel, and traffic on every surface while Valkey stops and comes back. During the
outage what needs Redis answers 503 in its surface's style and nothing answers 500; afterwards the
same sockets hear new events again (each instance resubscribed by itself) and REST is whole again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from backend import keys
from backend.callup import apps
from backend.config import Config
from backend.embedded import EmbeddedValkey, free_port
from tests.conftest import AppFactory, TestUser, UserFactory
from tests.faults.instances import Api, Outcome, fire, out_of_style, shared_car
from tests.support import eventually

REDIS_DOWN = {"service_unavailable"}


class Listener:
    """Every event frame a socket receives, read by a task of its own."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for message in self.ws:
            if message.type is aiohttp.WSMsgType.TEXT:
                frame = message.json()
                if frame.get("type") == "event":
                    self.events.append(frame)

    def channels(self, since: int) -> set[str]:
        return {frame["channel"] for frame in self.events[since:]}

    async def close(self) -> None:
        await self.ws.close()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def subscribed(ws: aiohttp.ClientWebSocketResponse, *channels: str) -> aiohttp.ClientWebSocketResponse:
    """`ws` subscribed to `channels` (a user's socket is on `user:{id}` already)."""
    for n, channel in enumerate(channels):
        await ws.send_json({"type": "subscribe", "channel": channel, "id": n})
        assert (await ws.receive_json(timeout=5))["type"] == "subscribed"
    return ws


@pytest.mark.slow
async def test_redis_restart_under_subscriptions_and_traffic(make_client: AppFactory, make_user: UserFactory,
                                                             config: Config, tmp_path: Path) -> None:
    valkey = EmbeddedValkey(tmp_path / "valkey", port=free_port(), persist=True)
    url = await asyncio.to_thread(valkey.start)
    try:
        a = await make_client(redis_url=url)
        b = await make_client(redis_url=url)
        base = str(b.make_url("")).rstrip("/")
        admin, operator = await make_user(role="admin"), await make_user(role="operator")
        sender, reader, booker = [await make_user(role="client", email=f"u{n}@example.com") for n in range(3)]
        app = await apps.create(b.app[keys.DB], "redis fault")
        async with aiohttp.ClientSession() as http:
            car = await shared_car(Api(http, admin.headers), base)
            chat = (await Api(http, sender.headers).call("POST", f"{base}/chats", {"user_id": reader.id}))["id"]
            dash = Listener(await subscribed(await a.ws_connect("/ws", headers=operator.headers), "dashboard", "cars"))
            inbox = Listener(await subscribed(await a.ws_connect("/ws", headers=reader.headers), f"chat:{chat}"))

            async def events_flow() -> None:
                """A booking and a message through b: their events reach a's sockets on all four channels."""
                marks = len(dash.events), len(inbox.events)
                booking = await Api(http, booker.headers).call("POST", f"{base}/api/bookings", {"car": car})
                await Api(http, booker.headers).call("POST", f"{base}/api/bookings/{booking['id']}/cancel", {})
                await Api(http, sender.headers).call("POST", f"{base}/chats/{chat}/messages", {"text": "hi"})

                async def heard() -> None:
                    assert dash.channels(marks[0]) == {"dashboard", "cars"}
                    assert inbox.channels(marks[1]) == {f"chat:{chat}", f"user:{reader.id}"}
                await eventually(heard, timeout=1)

            await events_flow()
            outcomes = await traffic_through_outage(http, base, valkey, admin, sender, booker, chat, car,
                                                    str(app["token"]))
            breaches = [why for o in outcomes if (why := out_of_style(o, REDIS_DOWN))]
            assert breaches == []
            assert any(o.status == 503 for o in outcomes), "the outage was never seen"

            # Back: the same sockets hear new events (each instance resubscribed), REST is whole.
            await eventually(events_flow, timeout=15, interval=0.2)
            assert not dash.task.done() and not inbox.task.done()
            for path, body in (("/profile/signin", {"login": sender.login, "password": sender.password}),
                               ("/login", {"email": "u0@example.com", "password": sender.password})):
                assert (await fire(http, "POST", base, path, json=body)).status == 200
            order = await fire(http, "POST", base, "/v1/orders", json={"phone": "79000000099"},
                               headers={"X-Application-Token": str(app["token"])})
            assert order.status == 200, order
            await dash.close()
            await inbox.close()
    finally:
        await asyncio.to_thread(valkey.stop)


async def traffic_through_outage(http: aiohttp.ClientSession, base: str, valkey: EmbeddedValkey, admin: TestUser,
                                 sender: TestUser, booker: TestUser, chat: int, car: int, app_token: str
                                 ) -> list[Outcome]:
    """Requests on every surface, before, during and right after a Redis stop; their outcomes."""
    outcomes: list[Outcome] = []
    down = asyncio.Event()
    phones = itertools.count(79000000100)
    async def mix() -> None:
        shots = [
            fire(http, "GET", base, "/api/cars"),
            fire(http, "GET", base, "/api/bookings", headers=booker.headers),
            fire(http, "POST", base, "/api/bookings", json={"car": car}, headers=booker.headers),
            fire(http, "POST", base, f"/chats/{chat}/messages", json={"text": "x"}, headers=sender.headers),
            fire(http, "GET", base, "/chats", headers=sender.headers),
            fire(http, "POST", base, "/v1/orders", json={"phone": str(next(phones))},
                 headers={"X-Application-Token": app_token}),
            fire(http, "POST", base, "/profile/signin", json={"login": sender.login, "password": sender.password}),
            fire(http, "POST", base, "/login", json={"email": "u0@example.com", "password": sender.password}),
            fire(http, "POST", base, "/api/auth/login/", json={"login": admin.login, "password": admin.password}),
            fire(http, "GET", base, "/auth/me", headers=admin.headers),
            fire(http, "POST", base, "/api/realtime/publish", json={"channel": "dashboard", "event": "x", "data": {}},
                 headers=admin.headers),
        ]
        answered = await asyncio.gather(*shots)
        outcomes.extend(answered)
        booked = answered[2]
        if booked.status == 201:
            outcomes.append(await fire(http, "POST", base, f"/api/bookings/{booked.body['id']}/cancel", json={},
                                       headers=booker.headers))

    async def loop() -> None:
        while not down.is_set():
            await mix()
        for _ in range(3):            # right after the stop, and while it stays down
            await mix()

    async def outage() -> None:
        await asyncio.sleep(0.3)
        await asyncio.to_thread(valkey.stop)
        down.set()

    await asyncio.gather(loop(), outage())
    await asyncio.to_thread(valkey.start)
    await mix()                      # right after the start, while the instances reconnect
    return outcomes
