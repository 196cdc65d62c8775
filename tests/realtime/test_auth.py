"""Socket identity (SPEC §8.1, §2.1): cookie and bearer at upgrade, expiry and revocation close 4001."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import insert, select

from backend import keys
from backend.auth.tables import users
from backend.auth.tokens import issue_access
from backend.callup.tables import apps
from backend.db import read, transaction
from backend.principal import TOKEN_LEEWAY, Principal
from backend.realtime.channels import INT_ID, Namespace
from tests.realtime.conftest import event_of, expect_close, public_channels, subscribe


async def only_that_app(db: Any, principal: Principal | None, rest: str) -> bool:
    """feed:{app_id}, readable by that app's token connection (as callup:app:{id} will be)."""
    return principal is not None and principal.app_id is not None and rest == str(principal.app_id)


def with_app_feed(app: web.Application) -> None:
    public_channels(app)
    app[keys.CHANNELS].add(Namespace("feed", authorize=only_that_app, rest=INT_ID))


async def create_app_row(client: TestClient) -> tuple[int, str]:
    """An apps row as `run.py create-app` writes it: (id, token)."""
    async with transaction(client.app[keys.DB]) as conn:
        row = (await conn.execute(insert(apps).values(name="test app", token=uuid.uuid4())
                                  .returning(apps.c.id, apps.c.token))).one()
    return int(row.id), str(row.token)


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


async def test_sign_out_closes_the_sockets_that_session_signed_in(rt_client, make_user) -> None:
    """Regression: /profile/signout unbound the session but its sockets kept the user's rights."""
    a, b = await rt_client(), await rt_client()
    user = await make_user(role="operator")
    resp = await a.post("/profile/signin", json={"login": user.login, "password": user.password})
    assert resp.status == 200
    async with a.ws_connect("/ws") as by_cookie, b.ws_connect("/ws", headers=user.headers) as by_token:
        assert (await subscribe(by_cookie, "dashboard"))["type"] == "subscribed"
        assert (await subscribe(by_token, "dashboard"))["type"] == "subscribed"
        assert (await a.post("/profile/signout")).status == 200
        await expect_close(by_cookie, 4001)
        # The same user's bearer socket on the other instance is another credential: it stays.
        channel, event, data = event_of(await by_token.receive_json(timeout=5))
        assert (channel, event) == (f"user:{user.id}", "session.revoked")
        assert data["jti"].startswith("sess:")            # a mark of the session, never its id
        await a.app[keys.BUS].publish("dashboard", "still", {"n": 1})
        assert event_of(await by_token.receive_json(timeout=5)) == ("dashboard", "still", {"n": 1})


async def test_expired_token_closes_the_socket_with_4001(rt_client, make_user) -> None:
    """At expiry plus the one leeway REST also grants (tests/api/test_leeway.py covers both sides)."""
    client = await rt_client()
    user = await make_user()
    config = client.app[keys.CONFIG]
    row = {"user_id": user.id, "login": user.login, "role_id": user.role_id}
    async with read(client.app[keys.DB]) as conn:
        password_hash = (await conn.execute(select(users.c.password_hash).where(users.c.id == user.id))).scalar_one()
    # exp + leeway falls one second from now.
    issued = int(time.time()) - int(config.access_ttl) - TOKEN_LEEWAY + 1
    token = issue_access(config, **row, password_hash=password_hash, issued_at=issued).token
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


async def test_app_token_header_authenticates_the_upgrade(make_client) -> None:
    a, b = await make_client(setup=with_app_feed), await make_client(setup=with_app_feed)
    app_id, token = await create_app_row(a)
    async with a.ws_connect("/ws", headers={"X-Application-Token": token}) as ws:
        assert (await subscribe(ws, f"feed:{app_id}"))["type"] == "subscribed"
        assert (await subscribe(ws, f"feed:{app_id + 1}", 2))["code"] == "forbidden"
        assert (await subscribe(ws, "dashboard", 3))["code"] == "forbidden"       # an app is no operator
        await b.app[keys.BUS].publish(f"feed:{app_id}", "order.status", {"id": 1})
        assert event_of(await ws.receive_json(timeout=5)) == (f"feed:{app_id}", "order.status", {"id": 1})


async def test_unknown_app_token_refuses_the_upgrade(make_client) -> None:
    client = await make_client(setup=with_app_feed)
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        async with client.ws_connect("/ws", headers={"X-Application-Token": str(uuid.uuid4())}):
            pass
    assert info.value.status == 403


async def test_auth_frame_cannot_replace_an_app_principal(make_client, make_user) -> None:
    """Regression: an app-token connection could become a user by sending an auth frame."""
    client = await make_client(setup=with_app_feed)
    app_id, token = await create_app_row(client)
    user = await make_user()
    async with client.ws_connect("/ws", headers={"X-Application-Token": token}) as ws:
        await ws.send_json({"type": "auth", "token": user.token, "id": 1})
        reply = await ws.receive_json(timeout=5)
        assert (reply["type"], reply["code"], reply["id"]) == ("error", "invalid_frame", 1)
        # Still the app, and never the user: its channel stays closed to this socket.
        assert (await subscribe(ws, f"user:{user.id}", 2))["code"] == "forbidden"
        assert (await subscribe(ws, f"feed:{app_id}", 3))["type"] == "subscribed"
        await client.app[keys.BUS].publish(f"user:{user.id}", "chat.created", {"id": 5})
        await ws.send_json({"type": "ping", "id": 4})
        assert await ws.receive_json(timeout=5) == {"type": "pong", "id": 4}


async def test_auth_frame_cannot_replace_a_user_principal(rt_client, make_user) -> None:
    client = await rt_client()
    first, second = await make_user(), await make_user()
    async with client.ws_connect("/ws", headers=first.headers) as ws:
        await ws.send_json({"type": "auth", "token": second.token, "id": 1})
        assert (await ws.receive_json(timeout=5))["code"] == "invalid_frame"
        assert (await subscribe(ws, f"user:{second.id}", 2))["code"] == "forbidden"


async def test_auth_frame_after_the_deadline_is_refused_and_the_socket_stays_anonymous(
        rt_client, make_user) -> None:
    timeout = 0.5
    client = await rt_client(ws_auth_timeout=timeout)
    user = await make_user()
    async with client.ws_connect("/ws") as punctual:
        await punctual.send_json({"type": "auth", "token": user.token, "id": 1})
        assert (await punctual.receive_json(timeout=5))["type"] == "authenticated"
    async with client.ws_connect("/ws") as late:
        assert (await subscribe(late, "news"))["type"] == "subscribed"
        # The server opened this connection before it answered, so `timeout` after the answer is
        # past its deadline. Waiting out that deadline is the subject of the test, not a guess.
        answered = time.monotonic()
        await asyncio.sleep(answered + timeout - time.monotonic() + 0.01)
        await late.send_json({"type": "auth", "token": user.token, "id": 2})
        reply = await late.receive_json(timeout=5)
        assert (reply["type"], reply["code"], reply["id"]) == ("error", "unauthorized", 2)
        # SPEC §8.1: an anonymous socket may keep using public channels, and only those.
        assert (await subscribe(late, f"user:{user.id}", 3))["code"] == "forbidden"
        await client.app[keys.BUS].publish("news", "story", {"n": 1})
        assert event_of(await late.receive_json(timeout=5)) == ("news", "story", {"n": 1})
