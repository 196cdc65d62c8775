"""Messenger events after commit (SPEC §7.4, §11.25): user:{id} of every member and chat:{id}."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient

from tests.chat.conftest import events_before, open_chat, send, socket, subscribe
from tests.conftest import TestUser
from tests.realtime.conftest import next_event


async def test_a_message_sent_on_a_reaches_sockets_on_b(two_apps: tuple[TestClient, TestClient],
                                                        alice: TestUser, bob: TestUser) -> None:
    a, b = two_apps
    async with socket(b, bob) as bobs, socket(b, alice) as watcher:
        chat = await open_chat(a, alice, bob)
        created = await next_event(bobs, f"user:{bob.id}", "chat.created")
        assert created["id"] == chat["id"] and created["members"] == chat["members"]
        reply = await subscribe(watcher, f"chat:{chat['id']}")
        assert reply["type"] == "subscribed", reply
        message = await send(a, alice, chat["id"], "hello from A", client_id="k1")
        assert await next_event(bobs, f"user:{bob.id}", "message.created") == message
        assert await next_event(watcher, f"chat:{chat['id']}", "message.created") == message
        assert await next_event(watcher, f"user:{alice.id}", "message.created") == message   # her other devices

        resp = await a.post(f"/chats/{chat['id']}/read", json={"message_id": message["id"]}, headers=bob.headers)
        assert resp.status == 200
        receipt = {"chat_id": chat["id"], "user_id": bob.id, "message_id": message["id"]}
        assert await next_event(watcher, f"chat:{chat['id']}", "message.read") == receipt
        assert await next_event(bobs, f"user:{bob.id}", "message.read") == receipt


async def test_retries_and_unmoved_reads_publish_nothing(two_apps: tuple[TestClient, TestClient],
                                                         alice: TestUser, bob: TestUser) -> None:
    a, b = two_apps
    chat = await open_chat(a, alice, bob)
    first = await send(a, alice, chat["id"], "one", client_id="same")
    async with socket(b, bob) as bobs:
        await send(a, alice, chat["id"], "one", client_id="same", status=200)        # a retry
        await a.post(f"/chats/{chat['id']}/read", json={"message_id": first["id"]}, headers=bob.headers)
        await a.post(f"/chats/{chat['id']}/read", json={"message_id": first["id"]}, headers=bob.headers)
        await a.post("/chats", json={"user_id": alice.id}, headers=bob.headers)    # exists: no chat.created
        marker = await send(a, alice, chat["id"], "marker")
        seen, data = await events_before(bobs, f"user:{bob.id}", "message.created")
    assert data == marker                                 # not the retried one
    assert [event for _, event, _ in seen] == ["message.read"]      # one read receipt, not two


async def test_the_chat_channel_is_for_members_only(client: TestClient, alice: TestUser, bob: TestUser,
                                                    carol: TestUser) -> None:
    chat = await open_chat(client, alice, bob)
    for user, channel in ((carol, f"chat:{chat['id']}"), (None, f"chat:{chat['id']}"), (alice, "chat:abc"),
                          (alice, "chat:999999"), (alice, "chat:" + "9" * 30), (alice, "chat:"),
                          (alice, f"chat:0{chat['id']}")):
        async with socket(client, user) as ws:
            reply = await subscribe(ws, channel)
            # A name that is no chat id at all is unknown (the namespace declares its shape);
            # a well-formed id the user may not read is forbidden.
            assert reply["type"] == "error" and reply["code"] in ("forbidden", "unknown_channel"), (user, channel)
            if re.fullmatch(r"chat:[1-9][0-9]{0,18}", channel):
                assert reply["code"] == "forbidden", (user, channel)
    async with socket(client, bob) as ws:
        assert (await subscribe(ws, f"chat:{chat['id']}"))["type"] == "subscribed"
