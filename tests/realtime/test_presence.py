"""Presence (SPEC §12.4): one entry per user, joined/left on the first/last socket, across instances."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from backend import keys
from backend.realtime.presence import REFRESH_BATCH
from tests.realtime.conftest import subscribe
from tests.support import eventually

SEEN: dict[int, list[tuple[str, int]]] = {}      # presence events each socket received, by id(ws)


def _note(ws: aiohttp.ClientWebSocketResponse, frame: dict[str, Any]) -> None:
    if frame.get("type") == "event" and frame["event"].startswith("presence."):
        SEEN.setdefault(id(ws), []).append((frame["event"], frame["data"]["id"]))


async def presence_of(ws: aiohttp.ClientWebSocketResponse, channel: str) -> list[dict[str, Any]]:
    await ws.send_json({"type": "presence", "channel": channel, "id": "p"})
    async with asyncio.timeout(5):
        while (frame := await ws.receive_json())["type"] != "presence":
            _note(ws, frame)
    assert (frame["channel"], frame["id"]) == (channel, "p")
    return frame["users"]


async def presence_events(ws: aiohttp.ClientWebSocketResponse) -> list[tuple[str, int]]:
    """Every presence event `ws` has received so far (frames up to the answer to a ping)."""
    await ws.send_json({"type": "ping", "id": "end"})
    async with asyncio.timeout(5):
        while (frame := await ws.receive_json()) != {"type": "pong", "id": "end"}:
            _note(ws, frame)
    return SEEN.get(id(ws), [])


async def test_two_sockets_of_one_user_are_one_entry_and_one_leave(rt_client, make_user) -> None:
    a, b = await rt_client(), await rt_client()
    watcher, user = await make_user(role="operator"), await make_user(role="operator")
    async with b.ws_connect("/ws", headers=watcher.headers) as watch:
        assert (await subscribe(watch, "dashboard"))["type"] == "subscribed"
        assert await presence_events(watch) == []          # a socket does not hear itself arrive
        async with a.ws_connect("/ws", headers=user.headers) as one, \
                a.ws_connect("/ws", headers=user.headers) as two:
            for ws in (one, two):
                assert (await subscribe(ws, "dashboard"))["type"] == "subscribed"
            users = await presence_of(watch, "dashboard")
            assert sorted(person["id"] for person in users) == [watcher.id, user.id]
            assert {person["id"]: person["username"] for person in users}[user.id] == user.login
            assert all(set(person) == {"id", "username", "name"} for person in users)
            assert await presence_of(one, "dashboard") == users
        async def left() -> None:
            assert await presence_events(watch) == [("presence.joined", user.id), ("presence.left", user.id)]

        await eventually(left)
        assert [person["id"] for person in await presence_of(watch, "dashboard")] == [watcher.id]
        assert len(await presence_events(watch)) == 2          # one leave, never a second


async def test_one_socket_leaving_of_two_on_two_instances_announces_nothing(rt_client, make_user) -> None:
    a, b = await rt_client(), await rt_client()
    watcher, user = await make_user(role="operator"), await make_user(role="operator")
    async with a.ws_connect("/ws", headers=watcher.headers) as watch:
        await subscribe(watch, "dashboard")
        async with b.ws_connect("/ws", headers=user.headers) as on_b:
            await subscribe(on_b, "dashboard")
            async with a.ws_connect("/ws", headers=user.headers) as on_a:
                await subscribe(on_a, "dashboard")
            await on_b.send_json({"type": "ping", "id": 1})
            assert (await on_b.receive_json(timeout=5))["type"] in ("pong", "event")
            assert [person["id"] for person in await presence_of(watch, "dashboard")] == sorted([watcher.id, user.id])
        async def left() -> None:
            assert await presence_events(watch) == [("presence.joined", user.id), ("presence.left", user.id)]

        await eventually(left)


async def test_presence_needs_the_rights_and_a_presence_channel(rt_client, make_user) -> None:
    a = await rt_client()
    driver = await make_user()
    async with a.ws_connect("/ws", headers=driver.headers) as ws:
        await ws.send_json({"type": "presence", "channel": "dashboard", "id": 1})
        assert (await ws.receive_json(timeout=5))["code"] == "forbidden"
        await ws.send_json({"type": "presence", "channel": "news", "id": 2})
        assert (await ws.receive_json(timeout=5))["code"] == "invalid_frame"


async def test_online_is_any_live_socket_on_any_instance(rt_client, make_user) -> None:
    a, b = await rt_client(), await rt_client()
    user, other = await make_user(), await make_user()
    online = b.app[keys.ONLINE]
    async with a.ws_connect("/ws", headers=user.headers) as ws:
        await ws.send_json({"type": "ping", "id": 1})
        await ws.receive_json(timeout=5)
        assert await online([user.id, other.id]) == {user.id}

    async def offline() -> None:
        assert await online([user.id]) == set()

    await eventually(offline)


async def test_an_expired_entry_is_swept_and_announced_once(rt_client, make_user) -> None:
    """A user whose instance stopped refreshing (killed) leaves within PRESENCE_TTL (see also test_kill)."""
    a = await rt_client(presence_ttl=0.6)
    watcher, ghost = await make_user(role="operator"), await make_user(role="operator")
    presence = a.app[keys.HUB].presence
    async with a.ws_connect("/ws", headers=watcher.headers) as watch:
        await subscribe(watch, "dashboard")
        # An entry of another instance that will never be refreshed, written as that instance would.
        await presence._join(keys=presence._keys("dashboard"), args=[
            f"{ghost.id}|dead-instance", 0, ghost.id, b'{"id":%d,"username":"g","name":""}' % ghost.id, 60000,
            a.app[keys.BUS].redis_channel("dashboard"), *presence._frame("dashboard", "presence.joined")])

        async def gone() -> None:
            assert await presence_events(watch) == [("presence.joined", ghost.id), ("presence.left", ghost.id)]

        await eventually(gone)
        assert [person["id"] for person in await presence_of(watch, "dashboard")] == [watcher.id]


async def test_a_refresh_of_many_channels_is_batched_and_sweeps_each(rt_client, make_user) -> None:
    """More channels than one pipelined batch (every socket's `user:{id}` is one): each gets its
    deadline pushed and its sweep, also when Redis lost its scripts in between."""
    a = await rt_client(presence_ttl=60)
    presence, redis = a.app[keys.HUB].presence, a.app[keys.REDIS]
    watcher, ghost = await make_user(role="operator"), await make_user(role="operator")
    count = REFRESH_BATCH * 2 + 5
    for user_id in range(1, count + 1):
        await presence.enter(f"user:{user_id}", user_id, None, announce=False)
    last = f"user:{count}"
    async with a.ws_connect("/ws", headers=watcher.headers) as watch:
        await subscribe(watch, "dashboard")         # one announced channel, swept in the last batch
        for channel, user_id in ((last, count + 1), ("dashboard", ghost.id)):
            # Entries of an instance that died, past their deadline: the sweep removes them.
            await presence._join(keys=presence._keys(channel), args=[
                f"{user_id}|dead-instance", 0, user_id, b'{"id":%d,"username":"g","name":""}' % user_id,
                60000, a.app[keys.BUS].redis_channel(channel), *presence._frame(channel, "presence.joined")])
        await redis.script_flush()
        before = int(time.time() * 1000)
        await presence.refresh()
        assert await presence_events(watch) == [("presence.joined", ghost.id), ("presence.left", ghost.id)]
    for user_id in (1, REFRESH_BATCH + 1, count):
        zset, info = presence._keys(f"user:{user_id}")
        assert await redis.zscore(zset, presence._member(user_id)) >= before + 60000 * 2 / 3 - 1000
    zset, info = presence._keys(last)
    assert await redis.zscore(zset, f"{count + 1}|dead-instance") is None
    assert await redis.hget(info, str(count + 1)) is None
    assert await presence.online(range(1, count + 2)) == set(range(1, count + 1))
