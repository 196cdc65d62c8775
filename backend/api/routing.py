"""Route registration that also records each endpoint for /openapi.json (SPEC §9)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from pydantic import BaseModel

from backend import keys

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """What /openapi.json says of one route."""

    method: str
    path: str
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    auth: str | None = None            # the permission or "user" / "app" the route needs


def endpoints(app: web.Application) -> list[Endpoint]:
    """The documented endpoints of `app` (created on first use)."""
    if keys.ENDPOINTS not in app:
        app[keys.ENDPOINTS] = []
    return app[keys.ENDPOINTS]


def route(app: web.Application, method: str, path: str, handler: Handler, *, summary: str, tag: str,
          body: type[BaseModel] | None = None, query: type[BaseModel] | None = None,
          response: type[BaseModel] | None = None, status: int = 200, auth: str | None = None,
          slash_optional: bool = False) -> None:
    """Add `handler` at `path` and document it; with slash_optional the path also works without
    its trailing slash (SPEC §5: no redirect, so POST works too)."""
    paths = [path]
    if slash_optional and path.endswith("/") and len(path) > 1:
        paths.append(path.rstrip("/"))
    for each in paths:
        app.router.add_route(method, each, handler)
    endpoints(app).append(Endpoint(method=method, path=path, summary=summary, tag=tag, body=body,
                                   query=query, response=response, status=status, auth=auth))
