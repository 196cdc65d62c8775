"""The Origin rule of SPEC §2.4 on /ws and /sse (issue 10, item 3: cross-site websocket hijacking).

What the sessid cookie authenticates — the credential a browser attaches by itself — must come from
ALLOWED_ORIGINS or from the server itself when an `Origin` is sent; a bearer token, an `auth` frame,
an app token or a request without `Origin` (no browser) are not the target of the rule (§8.1, §12.3).
"""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import UserFactory
from tests.realtime.conftest import subscribe
from tests.realtime.test_rights import sign_in
from tests.realtime.test_sse import next_block

FOREIGN = "https://evil.example"
FRIEND = "https://a.example"
REFUSED = {"detail": "Запрос с этого источника запрещён.", "code": "origin_not_allowed"}


def own(client: TestClient) -> str:
    return f"http://{client.server.host}:{client.server.port}"


async def test_cookie_upgrade_from_a_foreign_origin_is_refused(rt_client, make_user: UserFactory) -> None:
    """Regression: /ws took the sessid cookie with Origin: https://evil.example and the page could
    act in the user's name."""
    client = await rt_client()
    await sign_in(client, await make_user(role="operator"))
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        async with client.ws_connect("/ws", headers={"Origin": FOREIGN}):
            pass
    assert refused.value.status == 403
    # The answer, before any upgrade, in the surface's style.
    resp = await client.get("/ws", headers={"Origin": FOREIGN, "Connection": "Upgrade", "Upgrade": "websocket",
                                            "Sec-WebSocket-Version": "13",
                                            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert resp.status == 403 and await resp.json() == REFUSED
    assert "Sec-WebSocket-Accept" not in resp.headers


async def test_cookie_stream_from_a_foreign_origin_is_refused(rt_client, make_user: UserFactory) -> None:
    client = await rt_client()
    await sign_in(client, await make_user(role="operator"))
    resp = await client.get("/sse", params={"channel": "dashboard"}, headers={"Origin": FOREIGN})
    assert resp.status == 403 and await resp.json() == REFUSED
    async with client.get("/sse", params={"channel": "dashboard"}, headers={"Origin": own(client)}) as stream:
        assert stream.status == 200
        assert await next_block(stream) == [": connected"]


@pytest.mark.parametrize("origin", ["own", FRIEND, None])
async def test_cookie_upgrade_from_an_allowed_origin_or_none_works(rt_client, make_user: UserFactory,
                                                                   origin: str | None) -> None:
    client = await rt_client(allowed_origins=(FRIEND,))
    await sign_in(client, await make_user(role="operator"))
    headers = {} if origin is None else {"Origin": own(client) if origin == "own" else origin}
    async with client.ws_connect("/ws", headers=headers) as ws:
        assert (await subscribe(ws, "dashboard"))["type"] == "subscribed"


async def test_bearer_and_auth_frame_sockets_ignore_the_origin(rt_client, make_user: UserFactory) -> None:
    """SPEC §2.4 binds cookie-authenticated requests; a page holds a bearer token only if it was
    given one, so the token's socket from any origin keeps working (like bearer REST requests)."""
    client = await rt_client()
    operator = await make_user(role="operator")
    async with client.ws_connect("/ws", headers={"Origin": FOREIGN, **operator.headers}) as ws:
        assert (await subscribe(ws, "dashboard"))["type"] == "subscribed"
    # An anonymous cookie (no one signed in) is no credential either; the auth frame authenticates.
    assert (await client.get("/profile")).status == 401          # gives the jar an anonymous sessid
    async with client.ws_connect("/ws", headers={"Origin": FOREIGN}) as ws:
        await ws.send_json({"type": "auth", "token": operator.token, "id": 1})
        assert (await ws.receive_json(timeout=5))["type"] == "authenticated"
        assert (await subscribe(ws, "dashboard", 2))["type"] == "subscribed"
    async with client.get("/sse", params={"channel": "dashboard"},
                          headers={"Origin": FOREIGN, **operator.headers}) as stream:
        assert stream.status == 200
