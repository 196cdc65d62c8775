"""Route registration: the one place a route's access rule is declared, enforced and documented.

`route(..., auth=USER)` wraps the handler with the check *and* records the same rule for
/openapi.json (its `security` entry and `x-permission`), so the two can never disagree and no
handler repeats the rule with a decorator of its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from aiohttp import web
from pydantic import BaseModel

from backend import keys
from backend.api.access import check, current_user, principal_of
from backend.errors import ApiError, forbidden
from backend.principal import Permission

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Security = list[dict[str, list[str]]]
SIGNATURE_HEADER = "X-Signature"
API_PREFIX = "/api/"              # the DRF-style surfaces, where a trailing slash is optional


@dataclass(frozen=True, slots=True)
class Access:
    """Who may call a route (SPEC §2.1): anyone, a signed-in user holding any of some flags, or an app."""

    who: Literal["anyone", "user", "app", "signature"]
    any_of: tuple[Permission, ...] = ()
    refuse: Callable[[], ApiError] = forbidden       # what a caller without the right hears (app surfaces)

    def enforce(self, request: web.Request) -> None:
        """Raise the surface's 401/403 unless the request's principal may call the route."""
        if self.who == "user":
            check(current_user(request), *self.any_of)
        elif self.who == "app":
            principal = principal_of(request)
            if principal is None or principal.app_id is None:
                raise self.refuse()
        elif self.who == "signature" and not request.headers.get(SIGNATURE_HEADER):
            # The HMAC itself is checked by the handler, which owns the raw body and the secret.
            raise self.refuse()

    @property
    def security(self) -> Security:
        """The OpenAPI security requirement of this rule (alternatives; empty = no credentials)."""
        if self.who == "user":
            return [{"bearer": []}, {"session": []}]
        if self.who == "app":
            return [{"appToken": []}]
        if self.who == "signature":
            return [{"signature": []}]
        return []


ANYONE = Access("anyone")
USER = Access("user")


def permission(*flags: Permission) -> Access:
    """A signed-in user holding any of `flags` (is_admin holds all)."""
    if not flags:
        raise ValueError("permission() needs at least one flag; use USER for any signed-in user")
    return Access("user", tuple(Permission(flag) for flag in flags))


def app_token(refuse: Callable[[], ApiError]) -> Access:
    """A CallUp app by its X-Application-Token; anyone else hears `refuse()` (the surface's 403)."""
    return Access("app", refuse=refuse)


def signed(refuse: Callable[[], ApiError]) -> Access:
    """A machine caller proving itself by an HMAC of the body in X-Signature (call providers)."""
    return Access("signature", refuse=refuse)


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
    auth: Access = ANYONE
    # Statuses the handler itself answers beyond `status` and those /openapi.json derives from the
    # route (its access rule, body, query and path parameters): another success (200 for an
    # idempotent repeat of a 201), 404 of a lookup, 409 of a state machine, 429 of a limit...
    responses: tuple[int, ...] = ()


def endpoints(app: web.Application) -> list[Endpoint]:
    """The documented endpoints of `app` (created on first use)."""
    if keys.ENDPOINTS not in app:
        app[keys.ENDPOINTS] = []
    return app[keys.ENDPOINTS]


def guarded(handler: Handler, auth: Access) -> Handler:
    """`handler` behind the check of `auth` (the same object /openapi.json documents)."""
    if auth.who == "anyone":
        return handler

    async def checked(request: web.Request) -> web.StreamResponse:
        auth.enforce(request)
        return await handler(request)

    checked.__name__ = checked.__qualname__ = getattr(handler, "__name__", "handler")
    checked.__doc__ = handler.__doc__
    return checked


def route(app: web.Application, method: str, path: str, handler: Handler, *, summary: str, tag: str,
          body: type[BaseModel] | None = None, query: type[BaseModel] | None = None,
          response: type[BaseModel] | None = None, status: int = 200, auth: Access = ANYONE,
          responses: tuple[int, ...] = (), slash_optional: bool = False) -> None:
    """Add `handler` at `path` behind `auth`, and document both; with slash_optional the path also
    works without its trailing slash (SPEC §5: no redirect, so POST works too). Every `/api/*` path
    answers both with and without its trailing slash, whichever form it was declared in (DRF
    clients add the slash, the car-sharing seed leaves it out)."""
    paths = [path]
    if (slash_optional or path.startswith(API_PREFIX)) and len(path) > 1:
        paths.append(path.rstrip("/") if path.endswith("/") else path + "/")
    checked = guarded(handler, auth)
    for each in paths:
        app.router.add_route(method, each, checked)
    endpoints(app).append(Endpoint(method=method, path=path, summary=summary, tag=tag, body=body,
                                   query=query, response=response, status=status, auth=auth,
                                   responses=responses))
