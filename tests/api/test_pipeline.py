"""The app's one middleware (backend.api.middlewares.pipeline): its steps, errors, redirects, 499."""

from __future__ import annotations

import asyncio
import re

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


async def redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/health/live")


async def boom(request: web.Request) -> web.Response:
    raise RuntimeError("secret internal detail")


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(30)
    return web.json_response({})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/chats/zz-redirect", redirect)
    app.router.add_get("/chats/zz-boom", boom)
    app.router.add_get("/health/zz-slow", slow)


@pytest.fixture
async def probed(make_client) -> TestClient:
    return await make_client(setup=add_routes)


def count(metrics: str, route: str, status: int) -> float:
    pattern = rf'http_requests_total{{method="GET",route="{re.escape(route)}",status="{status}"}} (\S+)'
    found = re.search(pattern, metrics)
    return float(found.group(1)) if found else 0.0


async def test_a_redirect_passes_through_and_is_counted_as_such(probed: TestClient) -> None:
    resp = await probed.get("/chats/zz-redirect", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/health/live"
    metrics = await (await probed.get("/metrics")).text()
    assert count(metrics, "/chats/zz-redirect", 302) == 1
    assert count(metrics, "/chats/zz-redirect", 500) == 0


async def test_an_unexpected_error_is_a_500_in_style_and_still_gets_its_session_and_id(probed: TestClient) -> None:
    resp = await probed.get("/chats/zz-boom", headers={"X-Request-ID": "trace-me-1"})
    body = await resp.json()
    assert resp.status == 500
    assert body["error"] == "internal_error" and "secret" not in await resp.text()
    assert resp.headers["X-Request-ID"] == "trace-me-1"
    assert "sessid" in resp.cookies                    # the session step ran on the error answer


async def test_a_refusal_of_the_auth_step_is_rendered_and_finished_like_any_answer(probed: TestClient) -> None:
    resp = await probed.get("/chats", headers={"Authorization": "Bearer not-a-jwt"})
    assert resp.status == 401
    assert set(await resp.json()) >= {"error", "message"}           # the messenger's style
    assert REQUEST_ID.match(resp.headers["X-Request-ID"])
    assert "sessid" in resp.cookies


async def test_a_client_that_hangs_up_is_counted_as_499(probed: TestClient) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await probed.get("/health/zz-slow", timeout=0.3)

    async def counted() -> float:
        return count(await (await probed.get("/metrics")).text(), "/health/zz-slow", 499)

    for _ in range(50):
        if await counted() == 1:
            break
        await asyncio.sleep(0.1)
    assert await counted() == 1
