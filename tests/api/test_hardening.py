"""Hardening at the edge: common response headers, chunked bodies past MAX_BODY_SIZE, integers past
bigint in bodies and in JWT claims (SPEC §2.3: a 4xx in the surface's style, never a 500)."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from backend import keys
from backend.auth.tokens import issue_access
from tests.conftest import AppFactory, TestUser, UserFactory

TOO_BIG = 2**63                 # one past PostgreSQL bigint
BANNED_SERVER_WORDS = ("python", "aiohttp")


def check_common_headers(headers: Any, what: str) -> None:
    assert headers.get("X-Content-Type-Options") == "nosniff", what
    server = headers.get("Server", "")
    assert server == "backend", (what, server)
    assert not any(word in server.lower() for word in BANNED_SERVER_WORDS), what


# ---- headers -----------------------------------------------------------------------------------

async def test_every_response_carries_nosniff_and_no_versions(client: TestClient, make_user: UserFactory) -> None:
    """Regression: no nosniff anywhere, and `Server: Python/3.x aiohttp/3.y` on every answer."""
    user = await make_user()
    cases = [("GET", "/api/cars", {}), ("GET", "/api/auth/me/", {"headers": user.headers}),
             ("GET", "/docs", {}), ("GET", "/docs/static/swagger-ui.css", {}), ("GET", "/openapi.json", {}),
             ("GET", "/health/live", {}), ("GET", "/no-such-path", {}), ("DELETE", "/api/cars", {}),
             ("POST", "/api/auth/login/", {"data": b"{", "headers": {"Content-Type": "application/json"}})]
    for method, path, kwargs in cases:
        resp = await client.request(method, path, **kwargs)
        await resp.read()
        check_common_headers(resp.headers, f"{method} {path} -> {resp.status}")


async def test_the_websocket_upgrade_carries_them_too(client: TestClient) -> None:
    """The 101 is prepared inside the handler, past every middleware: only the prepare signal sees it."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET /ws HTTP/1.1\r\nHost: {client.host}:{client.port}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                     .encode())
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).decode("latin-1")
    finally:
        writer.close()
    status, *lines = head.strip().split("\r\n")
    assert status.startswith("HTTP/1.1 101"), status
    headers = {name.strip(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    check_common_headers(headers, "GET /ws -> 101")


# ---- chunked bodies ----------------------------------------------------------------------------

async def chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    """The body in pieces, each sent on its own, so the server sees them arrive one by one."""
    for start in range(0, len(body), size):
        yield body[start:start + size]
        await asyncio.sleep(0.01)        # pacing the stream, not waiting for a result


@pytest.mark.parametrize(("path", "code_of"), [
    ("/api/auth/login/", lambda body: body["code"]),
    ("/auth/login", lambda body: body["code"]),
    ("/login", lambda body: body["error"]),
], ids=["drf", "detail", "mnemonic"])
async def test_a_chunked_body_past_the_limit_is_413(make_client: AppFactory, path: str, code_of: Any) -> None:
    """Regression: without Content-Length the body was cut at its first chunk and refused as
    malformed JSON (400 parse_error) instead of 413."""
    client = await make_client(max_body=1024)
    body = b'{"login": "' + b"x" * 4000 + b'", "password": "whatever-1"}'
    resp = await client.post(path, data=chunks(body, 256), headers={"Content-Type": "application/json"})
    assert resp.status == 413
    assert code_of(await resp.json()) == "request_too_large"


async def test_a_chunked_body_within_the_limit_is_read_whole(make_client: AppFactory) -> None:
    client = await make_client(max_body=1024)
    body = b'{"login": "nobody", "password": "' + b"p" * 700 + b'"}'
    resp = await client.post("/api/auth/login/", data=chunks(body, 100),
                             headers={"Content-Type": "application/json"})
    assert resp.status == 401                              # parsed: a wrong login, not a broken body
    assert (await resp.json())["code"] == "authentication_failed"


# ---- integers past bigint in bodies ------------------------------------------------------------

async def assert_field_error(resp: aiohttp.ClientResponse, field: str) -> None:
    body = await resp.json()
    assert resp.status == 400, body
    assert list(body) == [field] and body[field], body


async def test_user_role_past_bigint_is_400(client: TestClient, admin: TestUser, make_user: UserFactory) -> None:
    """Regression: POST /api/users/ {"role": 9223372036854775808} was a 500 (the driver refused it)."""
    body = {"login": "newbie", "password": "long-enough-1", "role": TOO_BIG}
    await assert_field_error(await client.post("/api/users/", json=body, headers=admin.headers), "role")
    await assert_field_error(await client.post("/api/users/", json={**body, "role": True}, headers=admin.headers),
                             "role")
    other = await make_user()
    item = f"/api/users/{other.id}/"
    await assert_field_error(await client.put(item, json={"login": other.login, "role": TOO_BIG},
                                              headers=admin.headers), "role")
    await assert_field_error(await client.patch(item, json={"role": TOO_BIG}, headers=admin.headers), "role")
    await assert_field_error(await client.patch(item, json={"role": -TOO_BIG}, headers=admin.headers), "role")


async def test_permission_role_past_bigint_is_400(client: TestClient, admin: TestUser) -> None:
    await assert_field_error(await client.post("/api/permissions/", json={"role": TOO_BIG}, headers=admin.headers),
                             "role")
    listing = await client.get("/api/permissions/", headers=admin.headers)
    item = f"/api/permissions/{(await listing.json())['results'][0]['id']}/"
    await assert_field_error(await client.put(item, json={"role": TOO_BIG}, headers=admin.headers), "role")
    await assert_field_error(await client.patch(item, json={"role": TOO_BIG}, headers=admin.headers), "role")


async def test_app_owner_past_bigint_is_400(client: TestClient, admin: TestUser) -> None:
    await assert_field_error(await client.post("/api/callup/apps/", json={"name": "x", "owner": TOO_BIG},
                                               headers=admin.headers), "owner")
    created = await client.post("/api/callup/apps/", json={"name": "x"}, headers=admin.headers)
    assert created.status == 201
    item = f"/api/callup/apps/{(await created.json())['id']}/"
    await assert_field_error(await client.put(item, json={"name": "x", "owner": TOO_BIG}, headers=admin.headers),
                             "owner")
    await assert_field_error(await client.patch(item, json={"owner": TOO_BIG}, headers=admin.headers), "owner")


# ---- integers past bigint in access tokens -----------------------------------------------------

def token_for(client: TestClient, *, user_id: int, role_id: int = 1) -> dict[str, str]:
    """A correctly signed access token whose claims name ids no bigint column can hold."""
    token = issue_access(client.app[keys.CONFIG], user_id=user_id, login="ghost", role_id=role_id,
                         password_hash="$argon2id$whatever")
    return {"Authorization": f"Bearer {token.token}"}


@pytest.mark.parametrize("claims", [{"user_id": TOO_BIG}, {"user_id": 2**64 + 5}, {"user_id": 0},
                                    {"user_id": 1, "role_id": TOO_BIG}], ids=["2^63", "2^64+5", "zero", "role"])
async def test_a_token_naming_an_impossible_id_is_401(client: TestClient, claims: dict[str, int]) -> None:
    """Regression: a JWT whose `sub` is ≥ 2^63 was a 500 on every authenticated path."""
    headers = token_for(client, **claims)
    for path, code_of in (("/api/auth/me/", lambda body: body["code"]), ("/auth/me", lambda body: body["code"]),
                          ("/profile", lambda body: body["code"]), ("/users", lambda body: body["error"]),
                          ("/api/passenger-cars/", lambda body: body["code"])):
        resp = await client.get(path, headers=headers)
        assert resp.status == 401, path
        assert code_of(await resp.json()) == "token_not_valid", path


async def test_a_token_naming_an_impossible_id_at_the_websocket(client: TestClient) -> None:
    headers = token_for(client, user_id=TOO_BIG)
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        async with client.ws_connect("/ws", headers=headers):
            pass
    assert info.value.status == 401
    async with client.ws_connect("/ws") as ws:            # the same token in a first `auth` frame
        await ws.send_json({"type": "auth", "token": headers["Authorization"].removeprefix("Bearer "), "id": 1})
        reply = await ws.receive_json(timeout=5)
        assert (reply["type"], reply["code"]) == ("error", "unauthorized")
        closing = await ws.receive(timeout=5)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ws.close_code == 4001
