"""Behaviour under load (issue 11): a bounded Redis pool, clients that hang up, bearer traffic on
cookie surfaces. Speed itself is measured in scripts/bench/rest.py, never asserted here."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import WSServerHandshakeError
from aiohttp.test_utils import TestClient

from backend import keys
from tests.conftest import AppFactory, TestUser, UserFactory
from tests.support import eventually


def requests_with_status(client: TestClient, status: int) -> float:
    registry = client.app[keys.METRICS].registry
    return sum(sample.value for metric in registry.collect() if metric.name == "http_requests"
               for sample in metric.samples
               if sample.name == "http_requests_total" and sample.labels["status"] == str(status))


async def test_an_exhausted_redis_pool_is_a_503_never_a_500_nor_an_unchecked_token(
        make_client: AppFactory, make_user: UserFactory) -> None:
    """Regression (follow-up of issue 11): an exhausted pool raised the ConnectionError of a lost
    Redis, so the deny-list check failed open and a logged-out token was accepted by whoever
    kept the pool busy. Only an outage may skip the check (tests/auth/test_redis_down.py)."""
    client = await make_client(redis_pool_size=1, redis_pool_timeout=0.05)
    user = await make_user(role="client")
    revoked = await make_user(role="client")
    await client.app[keys.REVOCATIONS].deny_access(revoked.jti)
    signed_in = await client.post("/profile/signin", json={"login": user.login, "password": user.password})
    assert signed_in.status == 200, await signed_in.text()
    cookies = {"sessid": signed_in.cookies["sessid"].value}
    client.session.cookie_jar.clear()           # only the requests below that pass it carry it
    pool = client.app[keys.REDIS].connection_pool
    held = await pool.get_connection()          # the only connection: every command now waits, then fails
    try:
        for headers in (revoked.headers, user.headers):
            reads = await asyncio.gather(*(client.get("/api/auth/me/", headers=headers) for _ in range(4)))
            assert [resp.status for resp in reads] == [503] * 4
            assert (await reads[0].json())["code"] == "service_unavailable"     # DRF surface
            detail = await client.get("/auth/me", headers=headers)
            assert detail.status == 503 and (await detail.json())["code"] == "service_unavailable"
            with pytest.raises(WSServerHandshakeError) as refused:
                await client.ws_connect("/ws", headers=headers)
            assert refused.value.status == 503
            assert (await client.get("/sse?channel=cars", headers=headers)).status == 503
        profile = await client.get("/profile", cookies=cookies)      # the session is unreadable too
        assert profile.status == 503, await profile.text()
        login = await client.post("/auth/login", json={"identifier": user.login, "password": "wrong-pass-1"})
        assert login.status == 503, await login.text()      # uncounted guesses would bypass the limit
        signin = await client.post("/profile/signin", json={"login": user.login, "password": user.password})
        assert signin.status == 503, await signin.text()      # sign-in must store its session
        client.session.cookie_jar.clear()       # the answers above handed out fresh session ids
        async with client.ws_connect("/ws") as ws:           # anonymous: no Redis needed to open
            await ws.send_json({"type": "auth", "token": revoked.token, "id": 1})
            answer = await ws.receive_json(timeout=5)
            assert (answer["type"], answer["code"], answer["id"]) == ("error", "service_unavailable", 1)
            assert not ws.closed
    finally:
        await pool.release(held)
    assert requests_with_status(client, 500) == 0
    assert (await client.get("/api/auth/me/", headers=user.headers)).status == 200
    assert (await client.get("/api/auth/me/", headers=revoked.headers)).status == 401
    assert (await client.get("/profile", cookies=cookies)).status == 200


async def test_a_client_that_hangs_up_mid_body_is_no_database_outage(
        client: TestClient, make_user: UserFactory, caplog: pytest.LogCaptureFixture) -> None:
    """Regression (issue 11): the ConnectionResetError of a body cut short was an OSError, so
    render_errors took it for a lost database: 503, a warning and a false outage in the metrics."""
    user: TestUser = await make_user(role="client")
    assert client.server.port is not None
    _reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(("POST /api/bookings HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                  f"Authorization: Bearer {user.token}\r\nContent-Length: 100\r\n\r\n" + '{"car": ').encode())
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    with caplog.at_level(logging.WARNING, logger="backend.errors"):
        await eventually(lambda: requests_with_status(client, 499) == 1)
    assert requests_with_status(client, 503) == 0
    assert requests_with_status(client, 500) == 0
    assert not [record for record in caplog.records if "database unavailable" in record.getMessage()]


async def test_bearer_requests_to_cookie_surfaces_store_no_session(client: TestClient, make_user: UserFactory) -> None:
    user = await make_user(role="client")
    for _ in range(3):
        for path in ("/chats", "/api/bookings", "/api/cars"):
            resp = await client.get(path, headers=user.headers)
            assert resp.status == 200, (path, await resp.text())
    prefix = client.app[keys.CONFIG].redis_prefix
    stored = [key async for key in client.app[keys.REDIS].scan_iter(match=f"{prefix}sessid:*")]
    assert stored == []
