"""`online` on GET /chats members (SPEC §12.4): a live socket of the member on any instance."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.chat.conftest import open_chat
from tests.conftest import TestUser
from tests.support import eventually


async def members_online(client: TestClient, user: TestUser) -> dict[int, bool]:
    resp = await client.get("/chats", headers=user.headers)
    assert resp.status == 200
    chats = (await resp.json())["chats"]
    assert chats, "the chat opened by the test is listed"
    return {member["id"]: member["online"] for chat in chats for member in chat["members"]}


async def test_a_socket_on_another_instance_makes_the_member_online(two_apps: tuple[TestClient, TestClient],
                                                                    alice: TestUser, bob: TestUser) -> None:
    a, b = two_apps
    await open_chat(a, alice, bob)
    assert await members_online(a, alice) == {alice.id: False, bob.id: False}
    async with b.ws_connect("/ws", headers=bob.headers) as ws:
        await ws.send_json({"type": "ping", "id": 1})
        assert (await ws.receive_json(timeout=5))["type"] == "pong"
        assert await members_online(a, alice) == {alice.id: False, bob.id: True}

    async def bob_left() -> None:
        assert await members_online(a, alice) == {alice.id: False, bob.id: False}

    await eventually(bob_left)
