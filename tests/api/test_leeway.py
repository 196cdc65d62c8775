"""One JWT leeway for REST and websockets (SPEC §3.1 "30 s leeway", issue 12): a token expired less
than TOKEN_LEEWAY ago works on both, one expired longer ago on neither."""

from __future__ import annotations

import time

import aiohttp
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from backend import keys
from backend.auth.tables import users
from backend.auth.tokens import issue_access
from backend.db import read
from backend.principal import TOKEN_LEEWAY
from tests.conftest import TestUser


async def expired_by(client: TestClient, user: TestUser, seconds: int) -> str:
    """A real access token of `user` whose `exp` lies `seconds` in the past."""
    config = client.app[keys.CONFIG]
    async with read(client.app[keys.DB]) as conn:
        password_hash = (await conn.execute(select(users.c.password_hash).where(users.c.id == user.id))).scalar_one()
    issued = int(time.time()) - int(config.access_ttl) - seconds
    return issue_access(config, user_id=user.id, login=user.login, role_id=user.role_id,
                        password_hash=password_hash, issued_at=issued).token


async def test_inside_the_leeway_rest_and_socket_both_accept(client: TestClient, admin: TestUser) -> None:
    token = await expired_by(client, admin, TOKEN_LEEWAY - 10)
    headers = {"Authorization": f"Bearer {token}"}
    resp = await client.get("/api/auth/me/", headers=headers)
    assert resp.status == 200
    async with client.ws_connect("/ws", headers=headers) as ws:
        # Before the fix the socket closed with 4001 at once (expiry without leeway).
        await ws.send_json({"type": "subscribe", "channel": "dashboard", "id": 1})
        reply = await ws.receive(timeout=2)
        assert reply.type is WSMsgType.TEXT, reply
        assert reply.json()["type"] == "subscribed", reply.data
        await ws.send_json({"type": "ping", "id": 2})
        reply = await ws.receive(timeout=2)
        assert reply.type is WSMsgType.TEXT and reply.json() == {"type": "pong", "id": 2}, reply


async def test_past_the_leeway_rest_and_socket_both_refuse(client: TestClient, admin: TestUser) -> None:
    token = await expired_by(client, admin, TOKEN_LEEWAY + 10)
    headers = {"Authorization": f"Bearer {token}"}
    resp = await client.get("/api/auth/me/", headers=headers)
    assert resp.status == 401
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        async with client.ws_connect("/ws", headers=headers):
            pass
    assert refused.value.status == 401
