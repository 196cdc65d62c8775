"""Messenger fixtures: signed-in users, chats made through the API, websocket helpers with bounded waits."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from backend import keys
from backend.chat.tables import chats, messages
from backend.db import read
from tests.conftest import TestUser, UserFactory

WAIT = 5.0          # every wait of these tests is bounded; none sleeps "to give time"
_frames = itertools.count(100)

# The smallest valid PNG signature plus a body: what sniffing needs (the bytes are never decoded).
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF" + b"\x00" * 64


@pytest.fixture
async def alice(make_user: UserFactory) -> TestUser:
    return await make_user(role="client", login="alice", email="alice@example.com", name="Alice",
                           phone="+79001112233")


@pytest.fixture
async def bob(make_user: UserFactory) -> TestUser:
    return await make_user(role="client", login="bob", email="bob@example.com", name="Bob")


@pytest.fixture
async def carol(make_user: UserFactory) -> TestUser:
    return await make_user(role="client", login="carol", email="carol@example.com", name="Carol")


async def open_chat(client: TestClient, user: TestUser, other: TestUser | int) -> dict[str, Any]:
    other_id = other if isinstance(other, int) else other.id
    resp = await client.post("/chats", json={"user_id": other_id}, headers=user.headers)
    assert resp.status in (200, 201), await resp.text()
    return await resp.json()


async def send(client: TestClient, user: TestUser, chat_id: int, text: str, client_id: str | None = None,
               status: int = 201) -> dict[str, Any]:
    body: dict[str, Any] = {"text": text}
    if client_id is not None:
        body["client_id"] = client_id
    resp = await client.post(f"/chats/{chat_id}/messages", json=body, headers=user.headers)
    assert resp.status == status, await resp.text()
    return await resp.json()


async def count_messages(client: TestClient) -> int:
    async with read(client.app[keys.DB]) as conn:
        return int((await conn.execute(select(func.count()).select_from(messages))).scalar_one())


async def count_chats(client: TestClient) -> int:
    async with read(client.app[keys.DB]) as conn:
        return int((await conn.execute(select(func.count()).select_from(chats))).scalar_one())


async def ping(ws: aiohttp.ClientWebSocketResponse) -> None:
    """A round trip: frames are handled in order, so everything sent before it was handled."""
    frame_id = next(_frames)
    await ws.send_json({"type": "ping", "id": frame_id})
    assert await ws.receive_json(timeout=WAIT) == {"type": "pong", "id": frame_id}


@asynccontextmanager
async def socket(client: TestClient, user: TestUser | None = None) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """/ws for `user` (anonymous when None), ready: its user:{id} subscription is live."""
    async with client.ws_connect("/ws", headers=user.headers if user else {}) as ws:
        await ping(ws)       # the automatic user:{id} join happens before the first frame is read
        yield ws


async def reply_to(ws: aiohttp.ClientWebSocketResponse, frame: dict[str, Any]) -> dict[str, Any]:
    """Send `frame` and return the reply carrying its id; events arriving meanwhile are skipped."""
    await ws.send_json(frame)
    async with asyncio.timeout(WAIT):
        while True:
            reply = await ws.receive_json()
            if reply.get("type") != "event" and reply.get("id") == frame.get("id"):
                return reply


async def subscribe(ws: aiohttp.ClientWebSocketResponse, channel: str) -> dict[str, Any]:
    return await reply_to(ws, {"type": "subscribe", "channel": channel, "id": next(_frames)})


async def events_before(ws: aiohttp.ClientWebSocketResponse, channel: str, event: str,
                        ) -> tuple[list[tuple[str, str, Any]], dict[str, Any]]:
    """Every event before the first `event` on `channel` (a marker published last), and its data."""
    seen: list[tuple[str, str, Any]] = []
    async with asyncio.timeout(WAIT):
        while True:
            frame = await ws.receive_json()
            if frame.get("type") != "event":
                continue
            if (frame["channel"], frame["event"]) == (channel, event):
                return seen, frame["data"]
            seen.append((frame["channel"], frame["event"], frame["data"]))
