"""The Origin and content-type rule of cookie surfaces (SPEC §2.4, §11.7) — for REST and for the
upgrades of /ws and /sse — and CORS for ALLOWED_ORIGINS."""

from __future__ import annotations

import aiohttp_cors
from aiohttp import web

from backend import keys
from backend.api.surfaces import is_cookie_surface
from backend.api.validation import unsupported_media_type
from backend.errors import forbidden

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FORM_SAFE_TYPES = frozenset({"application/json", "multipart/form-data"})


def own_origins(request: web.Request) -> set[str]:
    """scheme://host as the client sees this server (the proxy's view when TRUST_PROXY is on)."""
    origins = {f"{request.scheme}://{request.host}".lower()}
    if request.app[keys.CONFIG].trust_proxy:
        proto = request.headers.get("X-Forwarded-Proto", request.scheme).split(",")[0].strip()
        host = request.headers.get("X-Forwarded-Host", request.host).split(",")[0].strip()
        origins.add(f"{proto}://{host}".lower())
    return origins


def origin_allowed(request: web.Request, origin: str) -> bool:
    allowed = {o.rstrip("/").lower() for o in request.app[keys.CONFIG].allowed_origins}
    origin = origin.strip().rstrip("/").lower()
    return origin in allowed or origin in own_origins(request)


def refuse_foreign_origin(request: web.Request) -> None:
    """The Origin rule (SPEC §2.4): a request that carries an `Origin` must come from ALLOWED_ORIGINS
    or from this server itself, else 403 origin_not_allowed. Without the header (non-browser
    clients) it passes."""
    origin = request.headers.get("Origin")
    if origin is not None and not origin_allowed(request, origin):
        raise forbidden("Запрос с этого источника запрещён.", "origin_not_allowed")


def by_session(request: web.Request) -> bool:
    """True when the sessid cookie authenticated the request (the credential a browser sends by itself)."""
    principal = request.get(keys.PRINCIPAL)
    return principal is not None and principal.via == "session"


def refuse_foreign_session_origin(request: web.Request) -> None:
    """The Origin rule for what the cookie authenticated, whatever the method: /ws and /sse call it
    (through keys.ORIGIN_GUARD) before the upgrade, so a foreign page cannot open a socket or a
    stream in the user's name (cross-site websocket hijacking). A bearer token or an `auth` frame
    is no ambient credential: a page holds it only if it was given it, so those are not refused."""
    if by_session(request):
        refuse_foreign_origin(request)


async def check_origin(request: web.Request) -> None:
    """Refuse cross-site unsafe requests that a cookie would authenticate (CSRF); a step of the
    app's middleware (backend.api.middlewares.pipeline).

    Runs after the principal is resolved, so it knows whether the cookie session carried the
    request. The Origin check covers every unsafe request to a cookie surface (sign-in included:
    login CSRF) and every session-authenticated one elsewhere; the content-type check covers
    requests the session authenticated, since HTML forms can only send urlencoded, text/plain or
    multipart bodies and the first two never reach a JSON handler legitimately. A body-less request
    (sign-out) has no content type to check.
    """
    if request.method in UNSAFE:
        session = by_session(request)
        if session or is_cookie_surface(request.path):
            refuse_foreign_origin(request)
        if session and request.body_exists and request.content_type not in FORM_SAFE_TYPES:
            raise unsupported_media_type("JSON или multipart/form-data")


def setup_cors(app: web.Application) -> None:
    """CORS with credentials for ALLOWED_ORIGINS on every route; call after all routes exist.

    aiohttp-cors adds an OPTIONS route per resource, so this runs last in create_app; with no
    ALLOWED_ORIGINS only same-origin clients exist and nothing is added.
    """
    origins = app[keys.CONFIG].allowed_origins
    if not origins:
        return
    options = aiohttp_cors.ResourceOptions(allow_credentials=True, allow_headers="*", allow_methods="*",
                                           expose_headers=("X-Request-ID", "Retry-After"), max_age=600)
    cors = aiohttp_cors.setup(app, defaults=dict.fromkeys(origins, options))
    for route in list(app.router.routes()):
        cors.add(route)
