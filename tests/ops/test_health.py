"""Health and metrics endpoints (SPEC §9)."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from aiohttp.test_utils import TestClient

from backend import keys
from backend.auth.tokens import issue_access
from backend.auth.users import create_user
from backend.config import Config
from backend.embedded import EmbeddedPostgres
from backend.migrations import migrate


async def test_live_and_ready(client: TestClient) -> None:
    resp = await client.get("/health/live")
    assert resp.status == 200
    assert (await resp.json())["status"] == "ok"
    for path in ("/health/ready", "/health"):
        resp = await client.get(path)
        body = await resp.json()
        assert resp.status == 200, body
        assert body["status"] == "ok" and body["db"] == "ok" and body["redis"] == "ok"
        assert body["instance"] and isinstance(body["connections"], int)
        assert resp.headers["X-Request-ID"]


async def test_instances_have_distinct_ids(two_apps: tuple[TestClient, TestClient]) -> None:
    a, b = two_apps
    ida = (await (await a.get("/health")).json())["instance"]
    idb = (await (await b.get("/health")).json())["instance"]
    assert ida != idb


async def test_ready_is_503_while_database_is_down_and_recovers(make_client, config: Config, tmp_path: Path) -> None:
    pg = EmbeddedPostgres(tmp_path / "pg", fsync=False)
    url = await asyncio.to_thread(pg.start)
    try:
        await migrate(url)
        client: TestClient = await make_client(dataclasses.replace(config, database_url=url))
        assert (await client.get("/health/ready")).status == 200
        await asyncio.to_thread(pg.stop)
        resp = await client.get("/health/ready")
        body = await resp.json()
        assert resp.status == 503 and body["db"] == "down" and body["status"] == "degraded"
        assert (await client.get("/health/live")).status == 200
        await asyncio.to_thread(pg.start)
        resp = await client.get("/health/ready")
        assert resp.status == 200, await resp.text()
    finally:
        await asyncio.to_thread(pg.stop)


async def test_degraded_while_redis_is_unreachable(make_client) -> None:
    client: TestClient = await make_client(redis_url="redis://127.0.0.1:1/0")
    resp = await client.get("/health/ready")
    body = await resp.json()
    assert resp.status == 200 and body["status"] == "degraded" and body["redis"] == "down"


async def test_metrics_count_requests_by_route_and_status(client: TestClient) -> None:
    await client.get("/health/live")
    await client.get("/no/such/route")
    text = await (await client.get("/metrics")).text()
    assert 'http_requests_total{method="GET",route="/health/live",status="200"} 1.0' in text
    assert 'route="unmatched",status="404"' in text
    # Latency by route and status too (SPEC §9): a fast 404 must not hide inside a route's timings.
    assert 'http_request_duration_seconds_count{method="GET",route="/health/live",status="200"} 1.0' in text
    assert 'http_request_duration_seconds_count{method="GET",route="unmatched",status="404"} 1.0' in text
    assert "http_request_duration_seconds_bucket" in text
    assert "db_pool_connections" in text


# With a bbox the free cars are read from the database on every request; the whole list is served
# from the instance's copy kept fresh by `cars` events (backend/sharing/free_cars.py), no probe of it.
CARS = "/api/cars?bbox=-180,-90,180,90"


async def test_requests_during_and_after_a_database_restart_are_503_never_500(
        make_client, config: Config, tmp_path: Path) -> None:
    """No pre-ping (db.make_engine): a stale pooled connection costs one 503, then the pool is fresh."""
    pg = EmbeddedPostgres(tmp_path / "pg", fsync=False)
    url = await asyncio.to_thread(pg.start)
    try:
        await migrate(url)
        client: TestClient = await make_client(dataclasses.replace(config, database_url=url))
        user = await create_user(client.app[keys.DB], config, login="restart", password="restart-pass-1",
                                 role="driver")
        token = issue_access(config, user_id=user["id"], login="restart", role_id=user["role_id"],
                             password_hash=user["password_hash"]).token
        bearer = {"Authorization": f"Bearer {token}"}
        # Warm both pools (SQLAlchemy's and the hot asyncpg one): connections the restart leaves stale.
        await asyncio.gather(*(client.get(CARS) for _ in range(5)),
                             *(client.get("/api/auth/me/", headers=bearer) for _ in range(5)))
        await asyncio.to_thread(pg.stop)
        cars = await client.get(CARS)
        assert cars.status == 503 and await cars.json() == {
            "detail": "База данных временно недоступна. Повторите запрос позже.", "code": "database_unavailable"}
        assert cars.headers["Retry-After"] == "1"

        me = await client.get("/api/auth/me/", headers=bearer)
        assert me.status == 503 and (await me.json())["code"] == "database_unavailable"

        await asyncio.to_thread(pg.start)
        statuses = [(await client.get(CARS)).status for _ in range(6)]
        assert 500 not in statuses and statuses[-1] == 200, statuses
        statuses = [(await client.get("/api/auth/me/", headers=bearer)).status for _ in range(8)]
        assert 500 not in statuses and statuses[-1] == 200, statuses
        # Connections that went stale while nobody asked: still no 500, at most one 503 each.
        await asyncio.gather(*(client.get(CARS) for _ in range(5)))
        await asyncio.to_thread(pg.stop)
        await asyncio.to_thread(pg.start)
        statuses = [(await client.get(CARS)).status for _ in range(6)]
        assert 500 not in statuses and statuses[-2:] == [200, 200], statuses
        statuses = [(await client.get("/api/auth/me/", headers=bearer)).status for _ in range(8)]
        assert 500 not in statuses and statuses[-2:] == [200, 200], statuses
    finally:
        await asyncio.to_thread(pg.stop)
