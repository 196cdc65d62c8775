"""Error bodies per surface (SPEC §2.3): the surface is chosen by the request path."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from aiohttp import web

from backend.errors import ApiError

Body = tuple[int, Any]
Renderer = Callable[[ApiError], Body]


def drf(err: ApiError) -> Body:
    """DRF: field errors as {"field": ["msg"]}, everything else {"detail", "code"}."""
    if err.fields:
        return err.status, err.fields
    return err.status, {"detail": err.message, "code": err.code}


def envelope(err: ApiError) -> Body:
    """CallUp: {"data": null, "errors": [{"message", "code"}]}, one entry per problem."""
    if err.fields:
        errors = [{"message": message, "code": err.code, "field": field}
                  for field, messages in err.fields.items() for message in messages]
    else:
        errors = [{"message": err.message, "code": err.code}]
    return err.status, {"data": None, "errors": errors}


def detail(err: ApiError) -> Body:
    """Operations paths: {"detail", "code"} (and the fields, if any)."""
    body: dict[str, Any] = {"detail": err.message, "code": err.code}
    if err.fields:
        body["errors"] = [{"field": field, "message": message}
                          for field, messages in err.fields.items() for message in messages]
    return err.status, body


def token_auth(err: ApiError) -> Body:
    """Token auth (/auth/*): the detail style, where any invalid body is 422 (seed 003)."""
    status, body = detail(err)
    return (422 if status == 400 else status), body


def mnemonic(err: ApiError) -> Body:
    """Messenger: {"error": "<code>", "message"}, plus the fields when there are some."""
    body: dict[str, Any] = {"error": err.code, "message": err.message}
    if err.fields:
        body["fields"] = err.fields
    return err.status, body


# Longest prefixes first where they overlap (/api/auth/ is DRF, /auth/ is detail style).
SURFACES: tuple[tuple[str, Renderer], ...] = (
    ("/v1/", envelope),
    ("/v1", envelope),
    ("/api/", drf),
    ("/api", drf),
    ("/profile", drf),
    ("/sign-in", drf),
    ("/auth/", token_auth),
    ("/auth", token_auth),
    ("/users", mnemonic),
    ("/login", mnemonic),
    ("/logout", mnemonic),
    ("/photos", mnemonic),
    ("/chats", mnemonic),
)

COOKIE_SURFACES: tuple[str, ...] = ("/profile", "/sign-in", "/api/cars", "/api/bookings", "/api/clients",
                                    "/api/operator", "/users", "/login", "/logout", "/photos", "/chats")


def _matches(path: str, prefix: str) -> bool:
    if prefix.endswith("/"):
        return path.startswith(prefix)
    return path == prefix or path.startswith(prefix + "/")


def renderer_for(path: str) -> Renderer:
    """The renderer of the surface `path` belongs to; operations paths use the detail style."""
    for prefix, renderer in SURFACES:
        if _matches(path, prefix):
            return renderer
    return detail


def surface_name(path: str) -> str:
    return renderer_for(path).__name__


# Every request asks (the session step, the Origin rule): one regex match, not a loop of prefixes.
_COOKIE_PATH = re.compile("(?:" + "|".join(map(re.escape, COOKIE_SURFACES)) + ")(?:/|$)")


def is_cookie_surface(path: str) -> bool:
    """Paths whose clients use the sessid cookie (SPEC §4.1: those responses always carry one)."""
    return _COOKIE_PATH.match(path) is not None


def error_response(request: web.Request, err: ApiError, dumps: Callable[[Any], str]) -> web.Response:
    """Render `err` in the style of the request's surface."""
    status, body = renderer_for(request.path)(err)
    response = web.json_response(body, status=status, dumps=dumps)
    for name, value in err.headers.items():
        response.headers[name] = value
    return response
