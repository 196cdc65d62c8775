"""A chat whose other member was deleted or blocked is closed (issue 10 item 11): no message gets in,
over REST or the websocket `send`, and GET /chats says so; its history stays readable."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from tests.chat.conftest import count_messages, open_chat, reply_to, send, socket
from tests.conftest import TestUser, UserFactory


async def _end(client: TestClient, admin: TestUser, user: TestUser, how: str) -> None:
    """Delete or block `user` the way an operator does it."""
    if how == "deleted":
        resp = await client.delete(f"/api/users/{user.id}/", headers=admin.headers)
        assert resp.status == 204, await resp.text()
    else:
        resp = await client.post(f"/api/clients/{user.id}/block/", json={"reason": "спам"}, headers=admin.headers)
        assert resp.status == 200, await resp.text()


async def _chat_of(client: TestClient, user: TestUser, chat_id: int) -> dict:
    resp = await client.get("/chats", headers=user.headers)
    assert resp.status == 200
    return next(chat for chat in (await resp.json())["chats"] if chat["id"] == chat_id)


@pytest.mark.parametrize("how", ["deleted", "blocked"])
async def test_messages_to_a_departed_member_are_refused(two_apps: tuple[TestClient, TestClient], alice: TestUser,
                                                         bob: TestUser, make_user: UserFactory, how: str) -> None:
    a, b = two_apps
    admin = await make_user(role="admin")
    chat = await open_chat(a, alice, bob)
    assert chat["closed"] is False and (await _chat_of(a, alice, chat["id"]))["closed"] is False
    first = await send(a, alice, chat["id"], "до")
    await _end(a, admin, bob, how)

    resp = await b.post(f"/chats/{chat['id']}/messages", json={"text": "после"}, headers=alice.headers)
    assert resp.status == 403
    body = await resp.json()
    assert body["error"] == "forbidden" and "закрыт" in body["message"], body

    async with socket(b, alice) as ws:
        reply = await reply_to(ws, {"type": "send", "chat_id": chat["id"], "text": "по сокету", "id": 5})
    assert (reply["type"], reply["code"]) == ("error", "forbidden"), reply

    assert await count_messages(a) == 1
    listed = await _chat_of(b, alice, chat["id"])
    assert listed["closed"] is True and listed["last_message"] == first
    history = await (await a.get(f"/chats/{chat['id']}/messages", headers=alice.headers)).json()
    assert history["messages"] == [first]            # what was said stays readable


async def test_unblocking_reopens_the_chat(client: TestClient, alice: TestUser, bob: TestUser,
                                           make_user: UserFactory) -> None:
    admin = await make_user(role="admin")
    chat = await open_chat(client, alice, bob)
    await _end(client, admin, bob, "blocked")
    await send(client, alice, chat["id"], "заблокирован", status=403)
    resp = await client.post(f"/api/clients/{bob.id}/unblock/", json={}, headers=admin.headers)
    assert resp.status == 200, await resp.text()
    assert (await _chat_of(client, alice, chat["id"]))["closed"] is False
    await send(client, alice, chat["id"], "снова открыт")


async def test_a_retry_into_a_closed_chat_is_refused_too(client: TestClient, alice: TestUser, bob: TestUser,
                                                         make_user: UserFactory) -> None:
    """The chat is closed before the client_id is looked up: a resend after the block is 403, not the
    first message again (the same order as any send: membership, then closed, then idempotency)."""
    admin = await make_user(role="admin")
    chat = await open_chat(client, alice, bob)
    await send(client, alice, chat["id"], "до", client_id="c-1")
    await _end(client, admin, bob, "blocked")
    refused = await send(client, alice, chat["id"], "до", client_id="c-1", status=403)
    assert refused["error"] == "forbidden" and "закрыт" in refused["message"]
    assert await count_messages(client) == 1
