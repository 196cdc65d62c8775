"""A /ws socket is served after its handler returned (issue 11, backend/realtime/websocket.py): the
middleware answers for the upgrade at once, the socket goes on being served and closed as before."""

from __future__ import annotations

import asyncio
import base64
import json
import os

from aiohttp.test_utils import TestClient

from backend import keys
from tests.conftest import UserFactory
from tests.realtime.conftest import expect_close, subscribe
from tests.support import eventually


def upgrades_counted(client: TestClient) -> float:
    registry = client.app[keys.METRICS].registry
    return sum(sample.value for metric in registry.collect() if metric.name == "http_requests"
               for sample in metric.samples
               if sample.name == "http_requests_total" and sample.labels["route"] == "/ws"
               and sample.labels["status"] == "101")


async def test_the_upgrade_is_counted_while_the_socket_is_still_open(rt_client, make_user: UserFactory) -> None:
    client = await rt_client()
    user = await make_user()
    async with client.ws_connect("/ws", headers=user.headers) as ws:
        assert (await subscribe(ws, "news"))["type"] == "subscribed"
        assert upgrades_counted(client) == 1
        assert len(client.app[keys.HUB].connections) == 1
        await ws.send_json({"type": "ping", "id": 3})
        assert (await ws.receive_json(timeout=5)) == {"type": "pong", "id": 3}
    assert upgrades_counted(client) == 1


async def test_a_socket_closed_by_the_server_is_released(rt_client, make_user: UserFactory) -> None:
    client = await rt_client()
    hub = client.app[keys.HUB]
    user = await make_user()
    async with client.ws_connect("/ws", headers=user.headers) as ws:
        assert (await subscribe(ws, "news"))["type"] == "subscribed"
        await client.app[keys.REVOCATIONS].revoke_everything(user.id)
        await expect_close(ws, 4001)
    # Released: out of the hub and of its channels (the leave awaits the bus), off the shutdown list.
    await eventually(lambda: not hub.connections and hub.local_count("news") == 0)
    assert not client.app[keys.SOCKETS]


def client_text_frame(text: str) -> bytes:
    """A masked client text frame (RFC 6455 §5.2), payload under 126 bytes."""
    payload, mask = text.encode(), os.urandom(4)
    return bytes((0x81, 0x80 | len(payload))) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def test_a_frame_sent_with_the_upgrade_request_is_served_after_the_http_parser_is_let_go(
        rt_client) -> None:
    """The HTTP parser is released at the upgrade (≈ 1.6 KB per socket); bytes that came behind the
    upgrade request in the same packet still reach the websocket reader."""
    client = await rt_client()
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET /ws HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
                     + client_text_frame(json.dumps({"type": "ping", "id": 7})))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 101")
        first, length = await asyncio.wait_for(reader.readexactly(2), 5)
        assert first == 0x81 and length < 126
        assert json.loads(await asyncio.wait_for(reader.readexactly(length), 5)) == {"type": "pong", "id": 7}
        # The aiohttp detail this relies on: the protocol's HTTP parser is gone once upgraded.
        (conn,) = client.app[keys.HUB].connections
        assert conn.transport.get_protocol()._parser is None
    finally:
        writer.close()
        await writer.wait_closed()
    await eventually(lambda: not client.app[keys.HUB].connections)
