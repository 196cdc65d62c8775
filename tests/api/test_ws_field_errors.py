"""Websocket error frames name the field and give the same Russian reason as REST (issue 12):
a `send` of 5,000 characters answered only "Неверный формат кадра." while REST named `text` and 4,000."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import TestUser, UserFactory


async def reply_to(ws: aiohttp.ClientWebSocketResponse, frame: dict[str, Any]) -> dict[str, Any]:
    await ws.send_json(frame)
    while True:
        reply = await ws.receive_json(timeout=5)
        if reply.get("type") != "event":
            return reply


@pytest.mark.parametrize(("change", "field"), [
    ({"text": "x" * 5000}, "text"),
    ({"text": ""}, "text"),
    ({"text": 5}, "text"),
    ({"client_id": "c" * 101}, "client_id"),
])
async def test_send_frame_errors_match_rest(client: TestClient, admin: TestUser, make_user: UserFactory,
                                            change: dict[str, Any], field: str) -> None:
    other = await make_user(role="client")
    chat = await (await client.post("/chats", json={"user_id": other.id}, headers=admin.headers)).json()
    body = {"text": "hi", **change}
    rest = await client.post(f"/chats/{chat['id']}/messages", json=body, headers=admin.headers)
    assert rest.status == 400
    rest_fields = (await rest.json())["fields"]
    async with client.ws_connect("/ws", headers=admin.headers) as ws:
        reply = await reply_to(ws, {"type": "send", "chat_id": chat["id"], **body, "id": 7})
    assert reply["type"] == "error" and reply["code"] == "invalid_frame" and reply["id"] == 7, reply
    assert reply["field"] == field
    assert reply["message"] == rest_fields[field][0]
    assert reply["fields"] == rest_fields


async def test_limit_is_named(client: TestClient, admin: TestUser) -> None:
    async with client.ws_connect("/ws", headers=admin.headers) as ws:
        reply = await reply_to(ws, {"type": "send", "chat_id": 1, "text": "x" * 5000, "id": 1})
    assert reply["field"] == "text" and "4000" in reply["message"], reply


@pytest.mark.parametrize(("frame", "field"), [
    ({"type": "subscribe", "channel": "c" * 201}, "channel"),
    ({"type": "subscribe"}, "channel"),
    ({"type": "subscribe", "channel": "cars", "since": {"offset": -1, "epoch": "e"}}, "since.offset"),
    ({"type": "auth", "token": ""}, "token"),
    ({"type": "typing", "chat_id": True}, "chat_id"),
])
async def test_core_and_command_frames_name_the_field(client: TestClient, admin: TestUser,
                                                      frame: dict[str, Any], field: str) -> None:
    async with client.ws_connect("/ws", headers=admin.headers) as ws:
        reply = await reply_to(ws, {**frame, "id": 3})
        assert reply["type"] == "error" and reply["code"] == "invalid_frame", reply
        assert reply["field"] == field, reply
        assert reply["message"] == reply["fields"][field][0] and reply["message"] != "Неверный формат кадра."
        assert (await reply_to(ws, {"type": "ping", "id": 4}))["type"] == "pong"     # the socket stays open
