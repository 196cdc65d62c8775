"""GET /dashboard (SPEC §9): a page that works with what the server offers, no build step, no CDN."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient


async def test_dashboard_page_is_self_contained(client: TestClient) -> None:
    resp = await client.get("/dashboard")
    assert resp.status == 200 and resp.content_type == "text/html"
    html = await resp.text()
    assert "connect-src 'self'" in resp.headers["Content-Security-Policy"]
    # Nothing is fetched from elsewhere: no external script, style or font.
    assert not re.search(r"""(src|href)=["']https?://""", html)
    # It signs in through the API, authenticates the socket with a frame (never a token in the URL)
    # and follows the dashboard channel.
    for needle in ('"/api/auth/login/"', '{type: "auth", token', 'channel: "dashboard"', "/api/operator/cars"):
        assert needle in html, needle
    assert "?token=" not in html and "access_token=" not in html
