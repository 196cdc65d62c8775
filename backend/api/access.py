"""Who may call a handler: the request's principal and permission checks (SPEC §2.1)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from backend import keys
from backend.errors import forbidden, unauthorized
from backend.principal import Permission, Principal

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def principal_of(request: web.Request) -> Principal | None:
    """The principal the auth middleware resolved, or None for an anonymous request."""
    return request.get(keys.PRINCIPAL)


def current_user(request: web.Request) -> Principal:
    """The signed-in user; 401 for anonymous requests and for app tokens."""
    principal = principal_of(request)
    if principal is None or not principal.is_user:
        raise unauthorized()
    return principal


def check(principal: Principal, *flags: Permission) -> None:
    """403 unless the principal holds one of `flags` (is_admin holds all)."""
    if flags and not principal.has_any(*flags):
        raise forbidden()


def client_address(request: web.Request) -> str | None:
    """The caller's address: the peer, or the first X-Forwarded-For hop when TRUST_PROXY is on."""
    if request.app[keys.CONFIG].trust_proxy:
        forwarded = request.headers.get("X-Forwarded-For", "")
        first = forwarded.split(",")[0].strip()
        if first:
            return first
    return request.remote
