"""Websocket commands send / typing / read (SPEC §8.2, §11.25): like REST, errors as frames."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient

from tests.chat.conftest import (
    count_messages,
    events_before,
    open_chat,
    ping,
    reply_to,
    send,
    socket,
    subscribe,
)
from tests.conftest import TestUser
from tests.realtime.conftest import next_event


async def test_send_is_persisted_acknowledged_and_delivered(two_apps: tuple[TestClient, TestClient],
                                                            alice: TestUser, bob: TestUser) -> None:
    a, b = two_apps
    chat = await open_chat(a, alice, bob)
    async with socket(b, alice) as ws, socket(a, bob) as bobs:
        frame = {"type": "send", "chat_id": chat["id"], "text": "over ws", "client_id": "w1", "id": 7}
        ack = await reply_to(ws, frame)
        assert ack["type"] == "ack" and ack["id"] == 7, ack
        message = ack["message"]
        assert (message["text"], message["client_id"], message["sender_id"]) == ("over ws", "w1", alice.id)
        assert await next_event(bobs, f"user:{bob.id}", "message.created") == message
        retry = await reply_to(ws, {**frame, "id": 8})                   # a retry: same message
        assert (retry["id"], retry["message"]) == (8, message)
    history = await (await a.get(f"/chats/{chat['id']}/messages", headers=bob.headers)).json()
    assert history["messages"] == [message]


async def events_before_pong(ws: Any) -> list[tuple[str, str, Any]]:
    """Ping; every frame before the pong must be an event (frames are handled in order)."""
    await ws.send_json({"type": "ping", "id": 99})
    events = []
    async with asyncio.timeout(5):
        while (frame := await ws.receive_json())["type"] == "event":
            events.append((frame["channel"], frame["event"], frame["data"]))
    assert frame == {"type": "pong", "id": 99}
    return events


async def test_typing_and_read_answer_only_on_error(two_apps: tuple[TestClient, TestClient],
                                                    alice: TestUser, bob: TestUser) -> None:
    a, b = two_apps
    chat = await open_chat(a, alice, bob)
    message = await send(a, alice, chat["id"], "read me")
    async with socket(a, alice) as alices, socket(b, bob) as bobs:
        assert (await subscribe(alices, f"chat:{chat['id']}"))["type"] == "subscribed"
        await bobs.send_json({"type": "typing", "chat_id": chat["id"], "id": 1})
        await bobs.send_json({"type": "read", "chat_id": chat["id"], "message_id": message["id"], "id": 2})
        # No reply came before the pong: both succeeded silently. Bob's own receipt may come first:
        # it travels through Redis pub/sub, not in the order of his frames.
        early = await events_before_pong(bobs)
        typing = {"chat_id": chat["id"], "user_id": bob.id}
        assert await next_event(alices, f"chat:{chat['id']}", "typing") == typing
        assert await next_event(alices, f"user:{alice.id}", "typing") == typing      # published after chat:{id}
        receipt = {"chat_id": chat["id"], "user_id": bob.id, "message_id": message["id"]}
        assert await next_event(alices, f"chat:{chat['id']}", "message.read") == receipt
        marker = await send(a, alice, chat["id"], "marker")
        seen, data = await events_before(bobs, f"user:{bob.id}", "message.created")
    assert data == marker
    assert [event for _, event, _ in early + seen] == ["message.read"]     # the typer hears no echo of it


async def error_of(ws: Any, frame: dict[str, Any]) -> dict[str, Any]:
    reply = await reply_to(ws, frame)
    assert reply["type"] == "error", reply
    return reply


async def test_refused_commands_are_error_frames_and_the_socket_stays(client: TestClient, alice: TestUser,
                                                                      bob: TestUser, carol: TestUser) -> None:
    chat = await open_chat(client, alice, bob)
    other = await open_chat(client, carol, bob)
    foreign = await send(client, carol, other["id"], "not yours")
    cid = chat["id"]
    cases = [
        ({"type": "send", "chat_id": other["id"], "text": "x", "id": 1}, "forbidden"),
        ({"type": "typing", "chat_id": other["id"], "id": 2}, "forbidden"),
        ({"type": "read", "chat_id": other["id"], "message_id": foreign["id"], "id": 3}, "forbidden"),
        ({"type": "send", "chat_id": 999999, "text": "x", "id": 4}, "forbidden"),
        ({"type": "send", "chat_id": cid, "text": "x" * 4001, "id": 5}, "invalid_frame"),
        ({"type": "send", "chat_id": cid, "text": "   ", "id": 6}, "invalid_frame"),
        ({"type": "send", "chat_id": cid, "id": 7}, "invalid_frame"),
        ({"type": "send", "chat_id": f"{cid}.5", "text": "x", "id": 8}, "invalid_frame"),
        ({"type": "typing", "id": 9}, "invalid_frame"),
        ({"type": "read", "chat_id": cid, "message_id": foreign["id"], "id": 10}, "invalid_frame"),
        ({"type": "read", "chat_id": cid, "message_id": -1, "id": 11}, "invalid_frame"),
    ]
    async with socket(client, alice) as ws:
        for frame, code in cases:
            reply = await error_of(ws, frame)
            assert (reply["code"], reply["id"]) == (code, frame["id"]), (frame, reply)
            assert reply["message"]
        await ping(ws)
    async with socket(client) as anonymous:
        for frame in ({"type": "send", "chat_id": cid, "text": "x", "id": 1},
                      {"type": "typing", "chat_id": cid, "id": 2},
                      {"type": "read", "chat_id": cid, "message_id": 1, "id": 3}):
            assert (await error_of(anonymous, frame))["code"] == "unauthorized"
        await ping(anonymous)
    assert await count_messages(client) == 1
