"""The shared heartbeat of /ws (SPEC §8.4, issue 11): pings every WS_HEARTBEAT, dead peers dropped,
live ones kept, the client's own pings answered — one timer for all sockets."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from backend import keys
from tests.realtime.conftest import subscribe
from tests.support import eventually


async def pings_within(ws: aiohttp.ClientWebSocketResponse, seconds: float, *, answer: bool) -> int:
    """How many pings arrive in `seconds`; each answered with a pong when `answer`."""
    count = 0
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = await ws.receive(timeout=left)
        except TimeoutError:
            break
        if message.type is aiohttp.WSMsgType.PING:
            count += 1
            if answer:
                await ws.pong(message.data)
        elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
            raise AssertionError(f"closed: {message}")
    return count


async def test_a_peer_that_answers_stays_and_is_pinged_every_period(rt_client) -> None:
    client = await rt_client(ws_heartbeat=0.2)
    async with client.ws_connect("/ws", autoping=False) as quiet, client.ws_connect("/ws", autoping=False) as other:
        await subscribe(quiet, "news")
        await subscribe(other, "news")
        pings = await pings_within(quiet, 1.2, answer=True)
        # One ping per WS_HEARTBEAT of silence (ticks of half of it): ≈ 6 in 1.2 s, never a close.
        assert 3 <= pings <= 8, pings
        await quiet.send_json({"type": "ping", "id": 1})
        reply = await quiet.receive(timeout=5)
        while reply.type is aiohttp.WSMsgType.PING:
            await quiet.pong(reply.data)
            reply = await quiet.receive(timeout=5)
        assert reply.json() == {"type": "pong", "id": 1}
        # The other socket did not answer: dropped, the answering one kept.
        await eventually(lambda: len(client.app[keys.HUB].connections) == 1)


async def test_the_clients_own_ping_is_answered(rt_client) -> None:
    client = await rt_client()
    async with client.ws_connect("/ws", autoping=False) as ws:
        await ws.ping(b"are you there")
        message = await ws.receive(timeout=5)
        assert message.type is aiohttp.WSMsgType.PONG and message.data == b"are you there"


async def test_a_busy_peer_is_not_pinged(rt_client) -> None:
    """Frames from the client count as signs of life, as aiohttp's own heartbeat treats them."""
    client = await rt_client(ws_heartbeat=0.3)
    async with client.ws_connect("/ws", autoping=False) as ws:
        for n in range(12):
            await ws.send_json({"type": "ping", "id": n})
            message = await ws.receive(timeout=5)
            assert message.type is aiohttp.WSMsgType.TEXT, message
            await asyncio.sleep(0.1)


async def test_the_heartbeat_restarts_after_the_last_socket_left(rt_client) -> None:
    client = await rt_client(ws_heartbeat=0.1)
    hub = client.app[keys.HUB]
    async with client.ws_connect("/ws") as ws:
        await subscribe(ws, "news")
    await eventually(lambda: not hub.connections)
    await asyncio.sleep(0.3)                      # ticks find no socket: the timer stops
    async with client.ws_connect("/ws", autoping=False) as dead:        # never answers
        while (message := await dead.receive(timeout=5)).type is aiohttp.WSMsgType.PING:
            pass
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    await eventually(lambda: not hub.connections)
