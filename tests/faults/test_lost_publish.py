"""A message committed by an instance killed before it published (found by test_instance_loss.py):
the sender's retry elsewhere — same client_id — publishes the event the dead instance never did,
and a retry of a message that was published publishes nothing again."""

from __future__ import annotations

import aiohttp
from sqlalchemy import insert, update

from backend import keys
from backend.chat.tables import chats, messages
from backend.db import transaction
from tests.conftest import AppFactory, UserFactory
from tests.faults.instances import Api


async def next_message(ws: aiohttp.ClientWebSocketResponse, channel: str) -> dict:
    """The next message.created on `channel` (other frames skipped; bounded by the receive timeout)."""
    while True:
        frame = await ws.receive_json(timeout=5)
        if frame.get("type") == "event" and frame["channel"] == channel and frame["event"] == "message.created":
            return frame


async def test_a_retry_publishes_what_a_killed_instance_committed_but_never_published(
        make_client: AppFactory, make_user: UserFactory) -> None:
    client = await make_client()
    base = str(client.make_url("")).rstrip("/")
    alice, bob = await make_user(role="client"), await make_user(role="client")
    async with aiohttp.ClientSession() as http:
        chat = (await Api(http, alice.headers).call("POST", f"{base}/chats", {"user_id": bob.id}))["id"]
        # What the killed instance left: the message and its chat row committed, no event published.
        async with transaction(client.app[keys.DB]) as conn:
            stored = (await conn.execute(insert(messages).values(
                chat_id=chat, sender_id=alice.id, text="lost", client_id="c-lost").returning(messages.c.id))).scalar_one()
            await conn.execute(update(chats).where(chats.c.id == chat).values(last_message_id=stored))
        channel = f"chat:{chat}"
        async with http.ws_connect(f"{base}/ws", headers=bob.headers) as ws:
            await ws.send_json({"type": "subscribe", "channel": channel, "id": 1})
            while (await ws.receive_json(timeout=5))["type"] != "subscribed":
                pass
            sender = Api(http, alice.headers)
            retry = await sender.call("POST", f"{base}/chats/{chat}/messages", {"text": "lost", "client_id": "c-lost"},
                                      expect=200)
            assert retry["id"] == stored
            first = await next_message(ws, channel)
            assert first["data"]["id"] == stored

            # Published once now: a second retry sends nothing, so the next event is the next message.
            await sender.call("POST", f"{base}/chats/{chat}/messages", {"text": "lost", "client_id": "c-lost"},
                              expect=200)
            new = await sender.call("POST", f"{base}/chats/{chat}/messages", {"text": "next", "client_id": "c-next"},
                                    expect=201)
            following = await next_message(ws, channel)
            assert following["data"]["id"] == new["id"] and following["offset"] == first["offset"] + 1
