"""Taking credentials back: the jti deny-list, refresh families, cookie sessions, and the event."""

from __future__ import annotations

import time
import uuid
from typing import Any

from aiohttp import web

from backend import keys
from backend.auth import refresh
from backend.auth.tokens import LEEWAY
from backend.db import transaction
from backend.kv import REDIS_ERRORS, redis_key
from backend.realtime.names import user_channel


def deny_key(app: web.Application, jti: str) -> str:
    return redis_key(app, "auth", "deny", jti)


def revoked_before_key(app: web.Application, user_id: int) -> str:
    """Unix time (float) at or before which every access token of the user is void."""
    return redis_key(app, "auth", "revoked-before", user_id)


def session_key(app: web.Application, session_id: str) -> str:
    """The Redis name of one cookie session (aiohttp-session data)."""
    return redis_key(app, "sessid", session_id)


def user_sessions_key(app: web.Application, user_id: int) -> str:
    """The set of session ids bound to a user, so logout ?all=true can kill them all."""
    return redis_key(app, "auth", "sessions", user_id)


def _grace(app: web.Application) -> int:
    # A token is accepted up to LEEWAY seconds after exp, so its deny entry must live that long too.
    return int(app[keys.CONFIG].access_ttl) + LEEWAY


async def deny_access(app: web.Application, *jtis: str, exp: int | None = None) -> None:
    """Refuse the access tokens `jtis` until they expire (TTL = remaining lifetime + leeway)."""
    if not jtis:
        return
    ttl = max(1, exp - int(time.time()) + LEEWAY) if exp is not None else _grace(app)
    async with app[keys.REDIS].pipeline(transaction=False) as pipe:
        for jti in jtis:
            pipe.set(deny_key(app, jti), 1, ex=ttl)
        await pipe.execute()


async def publish_revoked(app: web.Application, user_id: int, jti: str | None) -> None:
    """Tell every instance's sockets of the user (SPEC §2.1: their connections close)."""
    if keys.BUS in app:
        await app[keys.BUS].publish_control(user_channel(user_id), "revoke", jti=jti)


async def revoke_token(app: web.Application, user_id: int, jti: str, exp: int | None = None) -> None:
    """Logout of one access token: deny it and revoke the refresh family that issued it."""
    async with transaction(app[keys.DB]) as conn:
        family = await refresh.family_of(conn, jti)
        others = await refresh.revoke_family(conn, family, app[keys.CONFIG].access_ttl) if family else []
    await deny_access(app, jti, exp=exp)
    await deny_access(app, *[other for other in others if other != jti])
    await publish_revoked(app, user_id, jti)


async def revoke_family(app: web.Application, user_id: int, family_id: uuid.UUID) -> None:
    """Theft detected (a rotated refresh token came back): kill the family and its access tokens."""
    async with transaction(app[keys.DB]) as conn:
        jtis = await refresh.revoke_family(conn, family_id, app[keys.CONFIG].access_ttl)
    await deny_access(app, *jtis)
    for jti in jtis:
        await publish_revoked(app, user_id, jti)


async def revoke_everything(app: web.Application, user_id: int) -> None:
    """Every access token, refresh token and cookie session of the user dies now.

    For logout ?all=true, block, delete and password change; other domains (client blocking)
    call this too.
    """
    redis = app[keys.REDIS]
    await redis.set(revoked_before_key(app, user_id), repr(time.time()), ex=_grace(app))
    async with transaction(app[keys.DB]) as conn:
        await refresh.revoke_user(conn, user_id)
    await kill_sessions(app, user_id)
    await publish_revoked(app, user_id, None)


async def revoke_user_sessions(app: web.Application, user_id: int, jti: str | None = None) -> None:
    """Revoke one access token (`jti`) or, without one, everything of the user; publishes session.revoked."""
    # The entry point for other domains: block, delete and password change call it without a jti.
    if jti is not None:
        await revoke_token(app, user_id, jti)
    else:
        await revoke_everything(app, user_id)


async def kill_sessions(app: web.Application, user_id: int) -> int:
    """Delete every cookie session bound to the user (their next request starts anonymous)."""
    redis = app[keys.REDIS]
    members: Any = await redis.smembers(user_sessions_key(app, user_id))
    names = [session_key(app, m.decode() if isinstance(m, bytes) else m) for m in members]
    await redis.delete(user_sessions_key(app, user_id))
    return int(await redis.delete(*names)) if names else 0


async def not_before(app: web.Application, user_id: int) -> int:
    """The smallest `iat` a new token of the user may carry.

    `iat` has whole seconds; a token issued in the same second as a logout-all would compare
    equal to the revocation time and be refused, so it gets the next second instead.
    """
    now = int(time.time())
    try:
        raw = await app[keys.REDIS].get(revoked_before_key(app, user_id))
    except REDIS_ERRORS:
        return now          # nothing can be revoked while Redis is away, so nothing to step over
    return max(now, int(float(raw)) + 1) if raw is not None else now
