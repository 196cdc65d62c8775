"""GET /dashboard (SPEC §9): a page that works with what the server offers, no build step, no CDN."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient

from backend.ops.dashboard import ASSETS


async def test_dashboard_page_is_self_contained(client: TestClient) -> None:
    resp = await client.get("/dashboard")
    assert resp.status == 200 and resp.content_type == "text/html"
    html = await resp.text()
    csp = resp.headers["Content-Security-Policy"]
    assert "connect-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    # Nothing is fetched from elsewhere, and nothing inline that the CSP would block.
    assert not re.search(r"""(src|href)=["']https?://""", html)
    assert "<style" not in html and "style=" not in html and not re.search(r"<script>[^<]", html)
    for name in ASSETS:
        asset = await client.get(f"/dashboard/{name}")
        assert asset.status == 200, name
        assert "https://" not in (await asset.text()).replace("http://www.w3.org/2000/svg", "")
    script = await (await client.get("/dashboard/dashboard.js")).text()
    # It signs in through the API, authenticates the socket with a frame (never a token in the URL),
    # follows the dashboard channel, loads its state over REST and recovers with `since`.
    for needle in ('"/api/auth/login/"', '{type: "auth", token', 'CHANNEL = "dashboard"', "/api/operator/cars",
                   "/api/realtime/history?channel=", "/api/ops/stats", "since: {offset", "recovered === false",
                   "4001", '"/auth/logout"'):
        assert needle in script, needle
    assert "?token=" not in script and "access_token=" not in script
    assert (await client.get("/dashboard/nothing.js")).status == 404


async def test_favicon_is_served(client: TestClient) -> None:
    resp = await client.get("/favicon.ico")
    assert resp.status == 200 and resp.content_type == "image/x-icon"
    assert (await resp.read())[:4] == b"\x00\x00\x01\x00"      # an ICO header
