"""GET /dashboard: the operator page (SPEC §9), one static file with no build step.

It signs in through /api/auth/login/, authenticates its websocket with a first `auth` frame (no
token in the URL), subscribes to `dashboard` and keeps the cars and CallUp orders tables live.
"""

from __future__ import annotations

from importlib import resources

from aiohttp import web

PAGE = "dashboard.html"
# The page may only talk to this server; scripts and styles are inline in the one file.
CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
       "connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'")


def setup(app: web.Application) -> None:
    """Read the page once and serve it from memory."""
    html = resources.files("backend.ops").joinpath("static", PAGE).read_bytes()

    async def dashboard(request: web.Request) -> web.Response:
        return web.Response(body=html, content_type="text/html", charset="utf-8",
                            headers={"Content-Security-Policy": CSP, "Cache-Control": "no-cache",
                                     "X-Content-Type-Options": "nosniff"})

    app.router.add_get("/dashboard", dashboard)
