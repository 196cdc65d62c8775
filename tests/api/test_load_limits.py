"""Behaviour under load (issue 11): a bounded Redis pool, clients that hang up, bearer traffic on
cookie surfaces. Speed itself is measured in scripts/bench/rest.py, never asserted here."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp.test_utils import TestClient

from backend import keys
from tests.conftest import AppFactory, TestUser, UserFactory
from tests.support import eventually


def requests_with_status(client: TestClient, status: int) -> float:
    registry = client.app[keys.METRICS].registry
    return sum(sample.value for metric in registry.collect() if metric.name == "http_requests"
               for sample in metric.samples
               if sample.name == "http_requests_total" and sample.labels["status"] == str(status))


async def test_an_exhausted_redis_pool_is_a_503_or_fails_open_never_a_500(
        make_client: AppFactory, make_user: UserFactory) -> None:
    client = await make_client(redis_pool_size=1, redis_pool_timeout=0.05)
    user = await make_user(role="client")
    pool = client.app[keys.REDIS].connection_pool
    held = await pool.get_connection()          # the only connection: every command now waits, then fails
    try:
        reads = await asyncio.gather(*(client.get("/api/auth/me/", headers=user.headers) for _ in range(8)))
        # The deny-list is unreadable: bearer reads go on, like with Redis down (SPEC §8.4).
        assert [resp.status for resp in reads] == [200] * 8
        signin = await client.post("/profile/signin", json={"login": user.login, "password": user.password})
        assert signin.status == 503, await signin.text()      # sign-in must store its session
        assert "service_unavailable" in await signin.text()
    finally:
        await pool.release(held)
    assert requests_with_status(client, 500) == 0
    again = await client.get("/api/auth/me/", headers=user.headers)
    assert again.status == 200


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
