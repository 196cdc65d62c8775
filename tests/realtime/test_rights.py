"""Rights that change under open sockets (SPEC §2.1, §8.1): a new password closes every socket and
stream of the user with 4001; a new role, new role permissions or a new status re-check every
subscription on every instance and drop the ones no longer allowed with an `unsubscribed` frame."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from backend import keys
from tests.conftest import TestUser, UserFactory
from tests.realtime.conftest import event_of, expect_close, subscribe
from tests.realtime.test_sse import next_block
from tests.support import eventually

DROPPED = {"type": "unsubscribed", "channel": "dashboard", "reason": "forbidden"}


async def sign_in(client: TestClient, user: TestUser) -> None:
    """Give `client`'s cookie jar a session of `user`."""
    resp = await client.post("/profile/signin", json={"login": user.login, "password": user.password})
    assert resp.status == 200


async def stream_ends(resp: aiohttp.ClientResponse) -> None:
    """The SSE response ends (cleanly or cut off) within 5 s; events before the end are skipped."""
    with contextlib.suppress(aiohttp.ClientPayloadError, aiohttp.ClientConnectionError):
        async with asyncio.timeout(5):
            while await resp.content.readline():
                pass


async def next_frame(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    """The next frame that is not a presence announcement (others joining and leaving the dashboard)."""
    while True:
        frame = await ws.receive_json(timeout=5)
        if frame.get("type") != "event" or not frame["event"].startswith("presence."):
            return frame


async def still_open(ws: aiohttp.ClientWebSocketResponse, frame_id: int = 99) -> None:
    await ws.send_json({"type": "ping", "id": frame_id})
    while (reply := await ws.receive_json(timeout=5))["type"] == "event":
        pass
    assert reply == {"type": "pong", "id": frame_id}


# ---- a new password (issue 10, item 2) ---------------------------------------------------------------

@pytest.mark.parametrize("changed_by", ["self", "manager"])
async def test_password_change_closes_every_socket_and_stream_of_the_user(
        rt_client, make_user: UserFactory, changed_by: str) -> None:
    """Regression: after PATCH /api/users/{me}/ {"password"} REST answered 401 password_changed, but
    open sockets (bearer and cookie) kept sending and subscribing."""
    a, b = await rt_client(), await rt_client()
    user, bystander, admin = await make_user(role="operator"), await make_user(role="operator"), \
        await make_user(role="admin")
    await sign_in(b, user)                      # b's cookie jar: the user's session
    async with b.ws_connect("/ws", headers=user.headers) as by_token, b.ws_connect("/ws") as by_cookie, \
            b.ws_connect("/ws", headers=bystander.headers) as other, \
            b.get("/sse", params={"channel": "news"}, headers=user.headers) as stream:
        assert (await subscribe(by_token, "dashboard"))["type"] == "subscribed"
        assert (await subscribe(by_cookie, "dashboard"))["type"] == "subscribed"
        assert await next_block(stream) == [": connected"]
        changer = user.headers if changed_by == "self" else admin.headers
        resp = await a.patch(f"/api/users/{user.id}/", json={"password": "a-new-password-2"}, headers=changer)
        assert resp.status == 200, await resp.text()
        await expect_close(by_token, 4001)
        await expect_close(by_cookie, 4001)
        await stream_ends(stream)               # an SSE stream of another channel ends as well
        await still_open(other)                 # another user of the same role keeps the socket
    # REST still says why (SPEC §2.1): the old token and the old session are refused.
    assert (await (await a.get("/api/auth/me/", headers=user.headers)).json())["code"] == "password_changed"
    assert (await b.get("/profile")).status == 401


async def test_changing_another_field_keeps_the_sockets(rt_client, make_user: UserFactory) -> None:
    a, b = await rt_client(), await rt_client()
    user = await make_user(role="operator")
    async with b.ws_connect("/ws", headers=user.headers) as ws:
        assert (await subscribe(ws, "dashboard"))["type"] == "subscribed"
        resp = await a.patch(f"/api/users/{user.id}/", json={"name": "Пётр"}, headers=user.headers)
        assert resp.status == 200
        await a.app[keys.BUS].publish("dashboard", "still", {"n": 1})
        assert event_of(await next_frame(ws)) == ("dashboard", "still", {"n": 1})


# ---- rights re-checked (issue 10, item 4) --------------------------------------------------------------

async def test_downgraded_admin_loses_the_dashboard_on_every_instance(rt_client, make_user: UserFactory) -> None:
    """Regression: an admin downgraded to client kept receiving dashboard events on an open socket."""
    a, b = await rt_client(), await rt_client()
    admin, manager = await make_user(role="admin"), await make_user(role="admin")
    client_role = (await make_user(role="client")).role_id
    async with b.ws_connect("/ws", headers=admin.headers) as ws:
        assert (await subscribe(ws, "dashboard"))["type"] == "subscribed"
        assert (await subscribe(ws, "news", 2))["type"] == "subscribed"
        resp = await a.patch(f"/api/users/{admin.id}/", json={"role": client_role}, headers=manager.headers)
        assert resp.status == 200, await resp.text()
        assert await next_frame(ws) == DROPPED
        # Published in this order on one Redis connection: a dashboard event delivered after the
        # drop would arrive before the news one.
        await a.app[keys.BUS].publish("dashboard", "client.approved", {"id": 1})
        await a.app[keys.BUS].publish("news", "story", {"n": 1})
        assert event_of(await next_frame(ws)) == ("news", "story", {"n": 1})
        assert (await subscribe(ws, "dashboard", 3))["code"] == "forbidden"
        assert b.app[keys.HUB].local_count("dashboard") == 0
        # Still authenticated as the same token: the socket stays open with its new rights.
        await still_open(ws)


async def test_role_permissions_change_rechecks_every_user_of_the_role(rt_client, make_user: UserFactory) -> None:
    a, b = await rt_client(), await rt_client()
    admin = await make_user(role="admin")
    first, second = await make_user(role="operator"), await make_user(role="operator")
    await sign_in(b, second)
    perms = await (await a.get(f"/api/permissions/?role={first.role_id}", headers=admin.headers)).json()
    assert perms["results"]
    async with b.ws_connect("/ws", headers=first.headers) as by_token, b.ws_connect("/ws") as by_cookie, \
            a.ws_connect("/ws", headers=admin.headers) as unaffected:
        for ws in (by_token, by_cookie, unaffected):
            assert (await subscribe(ws, "dashboard"))["type"] == "subscribed"
        resp = await a.patch(f"/api/permissions/{perms['results'][0]['id']}/", json={"can_view_dashboard": False},
                             headers=admin.headers)
        assert resp.status == 200, await resp.text()
        assert await next_frame(by_token) == DROPPED
        assert await next_frame(by_cookie) == DROPPED
        await a.app[keys.BUS].publish("dashboard", "after", {"n": 1})
        assert event_of(await next_frame(unaffected)) == ("dashboard", "after", {"n": 1})
        await still_open(by_token)              # no dashboard event came before the pong
        await still_open(by_cookie)


async def test_upgraded_user_keeps_what_it_had(rt_client, make_user: UserFactory) -> None:
    """A re-check that finds more rights drops nothing, and the new rights apply at once."""
    a, b = await rt_client(), await rt_client()
    manager, driver = await make_user(role="admin"), await make_user(role="driver")
    operator_role = (await make_user(role="operator")).role_id
    async with b.ws_connect("/ws", headers=driver.headers) as ws:
        assert (await subscribe(ws, "news"))["type"] == "subscribed"
        assert (await subscribe(ws, "dashboard", 2))["code"] == "forbidden"
        resp = await a.patch(f"/api/users/{driver.id}/", json={"role": operator_role}, headers=manager.headers)
        assert resp.status == 200
        async def allowed() -> None:
            assert (await subscribe(ws, "dashboard", 3))["type"] == "subscribed"
        await eventually(allowed)          # the principal was reloaded on b: no new socket needed
        await a.app[keys.BUS].publish("news", "story", {"n": 1})
        assert event_of(await next_frame(ws)) == ("news", "story", {"n": 1})


async def test_sse_stream_of_a_downgraded_user_ends_with_unsubscribed(rt_client, make_user: UserFactory) -> None:
    a, b = await rt_client(), await rt_client()
    admin, manager = await make_user(role="admin"), await make_user(role="admin")
    driver_role = (await make_user(role="driver")).role_id
    async with b.get("/sse", params={"channel": "dashboard"}, headers=admin.headers) as stream:
        assert stream.status == 200
        assert await next_block(stream) == [": connected"]
        resp = await a.patch(f"/api/users/{admin.id}/", json={"role": driver_role}, headers=manager.headers)
        assert resp.status == 200
        block = await next_block(stream)
        assert block[0] == "event: unsubscribed"
        assert json.loads(block[1].removeprefix("data: ")) == DROPPED
        assert await stream.content.read() == b""      # then the stream ends, cleanly
