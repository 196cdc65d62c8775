"""Resolve a request's credentials into one Principal (SPEC §2.1): Bearer, then session, then app token."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from backend import keys
from backend.auth.passwords import password_fingerprint
from backend.auth.tokens import Claims, decode_access, invalid_token, password_changed
from backend.auth.users import Identity, fetch_identity
from backend.errors import ApiError, redis_unavailable, unauthorized
from backend.kv import REDIS_ERRORS, PoolExhausted, get_many
from backend.principal import Principal

log = logging.getLogger("backend.auth")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SessionResolver = Callable[[web.Request], Awaitable[Principal | None]]

APP_TOKEN_HEADER = "X-Application-Token"


def blocked_user() -> ApiError:
    return unauthorized("Пользователь заблокирован или удалён.", "user_inactive")


async def principal_from_access_token(app: web.Application, token: str) -> Principal:
    """Verify an access JWT against keys, deny-list, user state and password fingerprint."""
    identity, claims = await identity_from_access_token(app, token)
    return identity.principal(via="bearer", client=claims.client, jti=claims.jti, exp=claims.exp)


async def identity_from_access_token(app: web.Application, token: str) -> tuple[Identity, Claims]:
    """principal_from_access_token's checks; returns the user row they read and the token's claims."""
    claims = decode_access(app[keys.CONFIG], token)
    try:
        # Two keys of two slots: one MGET on a single Redis, one per slot on a cluster (CROSSSLOT).
        names = app[keys.REVOCATIONS]
        denied, revoked_before = await get_many(app[keys.REDIS], names.deny_key(claims.jti),
                                                names.revoked_before_key(claims.user_id))
    except PoolExhausted as exc:
        # Redis is up but this instance is saturated: failing open here would let whoever floods
        # the pool use a logged-out token. 503 (in the surface's style; /ws and /sse: no upgrade).
        log.warning("access token deny-list unchecked, Redis pool exhausted")
        raise redis_unavailable() from exc
    except REDIS_ERRORS:
        # REST keeps working without Redis (SPEC §8.4): signature, expiry, user state and the
        # password fingerprint are still checked; only logouts of the last ACCESS_TTL are unseen.
        log.warning("access token deny-list unchecked, Redis unavailable")
        denied = revoked_before = None
    if denied is not None:
        raise invalid_token()
    identity = await fetch_identity(app[keys.HOT_DB], claims.user_id)
    if identity is None or not identity.active:
        raise blocked_user()
    if password_fingerprint(claims.secret, identity.password_hash) != claims.pwd_fp:
        raise password_changed()
    if revoked_before is not None and claims.iat <= float(revoked_before):
        raise invalid_token()
    return identity, claims


async def reload_principal(app: web.Application, principal: Principal) -> Principal | None:
    """`principal`'s credential with the user's current role and permissions (open sockets re-check
    their subscriptions with it); None when the user was deleted or blocked meanwhile."""
    if principal.user_id is None:
        return principal                  # an app's rights are its token's, not a role's
    identity = await fetch_identity(app[keys.HOT_DB], principal.user_id)
    if identity is None or not identity.active:
        return None
    return identity.principal(via=principal.via, client=principal.client, jti=principal.token_jti,
                              exp=principal.token_exp)


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        return None
    if scheme.lower() != "bearer" or not token.strip():
        raise invalid_token()
    return token.strip()


async def principal_from_request(request: web.Request) -> Principal | None:
    """The caller of `request`, or None when it carries no credentials at all."""
    app = request.app
    token = bearer_token(request)
    if token is not None:
        identity, claims = await identity_from_access_token(app, token)
        request[keys.IDENTITY] = identity       # /api/auth/me/ answers from it, no second query
        return identity.principal(via="bearer", client=claims.client, jti=claims.jti, exp=claims.exp)
    if keys.SESSION_RESOLVER in app:
        principal = await app[keys.SESSION_RESOLVER](request)
        if principal is not None:
            return principal
    app_token = request.headers.get(APP_TOKEN_HEADER)
    if app_token is not None and keys.APP_TOKEN_RESOLVER in app:      # set by callup's setup()
        return await app[keys.APP_TOKEN_RESOLVER](app, app_token)
    return None


async def authenticate(request: web.Request) -> None:
    """Resolve the principal once per request (a step of backend.api.middlewares.pipeline);
    handlers read request[keys.PRINCIPAL]."""
    principal = await principal_from_request(request)
    if principal is not None:
        request[keys.PRINCIPAL] = principal


def seconds_left(exp: int) -> int:
    return max(1, exp - int(time.time()))
