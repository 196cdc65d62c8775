"""Socket identity (SPEC §8.1, §2.1): cookie and bearer at upgrade, expiry and revocation close 4001."""

from __future__ import annotations

import aiohttp
from aiohttp import WSMsgType

from backend import keys
from tests.realtime.conftest import event_of, subscribe


async def expect_close(ws: aiohttp.ClientWebSocketResponse, code: int) -> None:
    """The next non-event frame is a close with `code`."""
    while (message := await ws.receive(timeout=5)).type is WSMsgType.TEXT:
        pass
    assert message.type is WSMsgType.CLOSE and message.data == code, message


async def test_bearer_connection_is_joined_to_its_user_channel(rt_client, make_user) -> None:
    a, b = await rt_client(), await rt_client()
    user = await make_user()
    async with a.ws_connect("/ws", headers=user.headers) as ws:
        await b.app[keys.BUS].publish(f"user:{user.id}", "chat.created", {"id": 5})
        assert event_of(await ws.receive_json(timeout=5)) == (f"user:{user.id}", "chat.created", {"id": 5})
        await ws.send_json({"type": "unsubscribe", "channel": f"user:{user.id}", "id": 1})
        assert (await ws.receive_json(timeout=5))["code"] == "forbidden"


async def test_cookie_session_authenticates_the_upgrade(rt_client, make_user) -> None:
    client = await rt_client()
    operator = await make_user(role="operator")
    resp = await client.post("/profile/signin", json={"login": operator.login, "password": operator.password})
    assert resp.status == 200
    async with client.ws_connect("/ws") as ws:          # the client's cookie jar carries sessid
        assert (await subscribe(ws, "dashboard"))["type"] == "subscribed"


async def test_expired_token_closes_the_socket_with_4001(rt_client, make_user) -> None:
    client = await rt_client(access_ttl=1)
    user = await make_user()
    resp = await client.post("/api/auth/login/", json={"login": user.login, "password": user.password})
    token = (await resp.json())["access"]
    async with client.ws_connect("/ws", headers={"Authorization": f"Bearer {token}"}) as ws:
        await expect_close(ws, 4001)


async def test_logout_on_another_instance_closes_only_that_tokens_sockets(rt_client, make_user) -> None:
    a, b = await rt_client(), await rt_client()
    user = await make_user()
    second = await b.post("/api/auth/login/", json={"login": user.login, "password": user.password})
    second_headers = {"Authorization": f"Bearer {(await second.json())['access']}"}
    async with a.ws_connect("/ws", headers=user.headers) as revoked, \
            a.ws_connect("/ws", headers=second_headers) as kept:
        resp = await b.post("/auth/logout", headers=user.headers)
        assert resp.status in (200, 204)
        await expect_close(revoked, 4001)
        await kept.send_json({"type": "ping", "id": 1})
        reply = await kept.receive_json(timeout=5)
        while reply["type"] == "event":                      # the revocation event itself
            reply = await kept.receive_json(timeout=5)
        assert reply == {"type": "pong", "id": 1}


async def test_logout_all_closes_every_socket_of_the_user(rt_client, make_user) -> None:
    a, b = await rt_client(), await rt_client()
    user = await make_user()
    async with a.ws_connect("/ws", headers=user.headers) as on_a, b.ws_connect("/ws") as on_b:
        await on_b.send_json({"type": "auth", "token": user.token, "id": 1})
        assert (await on_b.receive_json(timeout=5))["type"] == "authenticated"
        resp = await a.post("/auth/logout?all=true", headers=user.headers)
        assert resp.status in (200, 204)
        await expect_close(on_a, 4001)
        await expect_close(on_b, 4001)


async def test_revoked_token_is_refused_by_the_auth_frame(rt_client, make_user) -> None:
    client = await rt_client()
    user = await make_user()
    assert (await client.post("/auth/logout", headers=user.headers)).status in (200, 204)
    async with client.ws_connect("/ws") as ws:
        await ws.send_json({"type": "auth", "token": user.token, "id": 1})
        assert (await ws.receive_json(timeout=5))["code"] == "unauthorized"
        await expect_close(ws, 4001)
