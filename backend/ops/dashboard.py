"""GET /dashboard: the operator page (SPEC §9), static files with no build step and no CDN.

The page (static/dashboard.html, .css, .js) signs in through /api/auth/login/, loads its initial
state over REST (/api/operator/cars, /api/realtime/history?channel=dashboard, /api/ops/stats),
authenticates its websocket with a first `auth` frame (no token in the URL), follows `dashboard`
and resubscribes with `since` after a reconnect, refetching over REST when nothing was recovered.
"""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from backend.ops import stats

PAGE = "dashboard.html"
ASSETS = {                                  # served at /dashboard/<name>
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
    "favicon.svg": "image/svg+xml",
}
# The page may only talk to this server and run its own files: no inline script or style at all.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def _read(name: str) -> bytes:
    return resources.files("backend.ops").joinpath("static", name).read_bytes()


def _static(body: bytes, content_type: str, *, csp: bool = False) -> web.Response:
    headers = {"Cache-Control": "no-cache"}
    if csp:
        headers["Content-Security-Policy"] = CSP
    return web.Response(body=body, headers={**headers, "Content-Type": content_type})


def setup(app: web.Application) -> None:
    """Read the files once and serve them from memory; the stats endpoint the plots read."""
    html = _read(PAGE)
    assets = {name: (_read(name), kind) for name, kind in ASSETS.items()}
    icon = _read("favicon.ico")

    async def dashboard(request: web.Request) -> web.Response:
        """GET /dashboard."""
        return _static(html, "text/html; charset=utf-8", csp=True)

    async def asset(request: web.Request) -> web.Response:
        """GET /dashboard/<file>."""
        found = assets.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound()
        body, kind = found
        return _static(body, kind + ("; charset=utf-8" if kind.startswith("text/") else ""))

    async def favicon(request: web.Request) -> web.Response:
        """GET /favicon.ico: browsers ask for it on every page of the host."""
        return web.Response(body=icon, headers={"Content-Type": "image/x-icon",
                                                "Cache-Control": "public, max-age=86400"})

    app.router.add_get("/dashboard", dashboard)
    app.router.add_get("/dashboard/{name}", asset)
    app.router.add_get("/favicon.ico", favicon)
    stats.setup(app)
