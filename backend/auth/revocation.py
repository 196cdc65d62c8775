"""Taking credentials and rights back: the jti deny-list, refresh families, cookie sessions, and the
orders that reach open sockets on every instance (SPEC §2.1, §8.1).

Everything goes through one `Revocations`, built once per app from what it uses (Redis, the
database, the bus, the key prefix, ACCESS_TTL) and kept under `keys.REVOCATIONS`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from backend import keys
from backend.auth import refresh
from backend.auth.tokens import LEEWAY
from backend.db import transaction
from backend.kv import KV, REDIS_ERRORS
from backend.realtime.bus import Bus
from backend.realtime.names import role_target, user_channel

# Control actions the realtime hub carries out on an identity's sockets (backend.realtime.hub).
REVOKE = "revoke"        # close the sockets holding the credential (all of them without a jti)
RECHECK = "recheck"      # reload the principal and drop the subscriptions it may no longer hold


@dataclass(frozen=True, slots=True)
class Revocations:
    """The revocation state in Redis and PostgreSQL, and the control orders on the bus."""

    redis: KV
    db: AsyncEngine
    bus: Bus | None              # None without realtime: nothing to tell sockets then
    prefix: str                  # REDIS_PREFIX
    access_ttl: float            # ACCESS_TTL: how long a denied access token could still be presented

    # ---- Redis names -------------------------------------------------------------------------
    def _key(self, *parts: str | int) -> str:
        return self.prefix + ":".join(str(part) for part in parts)

    def deny_key(self, jti: str) -> str:
        return self._key("auth", "deny", jti)

    def revoked_before_key(self, user_id: int) -> str:
        """Unix time (float) at or before which every access token of the user is void."""
        return self._key("auth", "revoked-before", user_id)

    def session_key(self, session_id: str) -> str:
        """The Redis name of one cookie session (aiohttp-session data)."""
        return self._key("sessid", session_id)

    def user_sessions_key(self, user_id: int) -> str:
        """The set of session ids bound to a user, so logout ?all=true can kill them all."""
        return self._key("auth", "sessions", user_id)

    def _grace(self) -> int:
        # A token is accepted up to LEEWAY seconds after exp, so its deny entry must live that long too.
        return int(self.access_ttl) + LEEWAY

    # ---- access tokens, refresh families, sessions ---------------------------------------------
    async def deny_access(self, *jtis: str, exp: int | None = None) -> None:
        """Refuse the access tokens `jtis` until they expire (TTL = remaining lifetime + leeway)."""
        if not jtis:
            return
        ttl = max(1, exp - int(time.time()) + LEEWAY) if exp is not None else self._grace()
        async with self.redis.pipeline(transaction=False) as pipe:
            for jti in jtis:
                pipe.set(self.deny_key(jti), 1, ex=ttl)
            await pipe.execute()

    async def revoke_token(self, user_id: int, jti: str, exp: int | None = None) -> None:
        """Logout of one access token: deny it and revoke the refresh family that issued it."""
        async with transaction(self.db) as conn:
            family = await refresh.family_of(conn, jti)
            others = await refresh.revoke_family(conn, family, self.access_ttl) if family else []
        await self.deny_access(jti, exp=exp)
        await self.deny_access(*[other for other in others if other != jti])
        await self.publish_revoked(user_id, jti)

    async def revoke_family(self, user_id: int, family_id: uuid.UUID) -> None:
        """Theft detected (a rotated refresh token came back): kill the family and its access tokens."""
        async with transaction(self.db) as conn:
            jtis = await refresh.revoke_family(conn, family_id, self.access_ttl)
        await self.deny_access(*jtis)
        for jti in jtis:
            await self.publish_revoked(user_id, jti)

    async def revoke_everything(self, user_id: int) -> None:
        """Every access token, refresh token, cookie session and socket of the user dies now.

        For logout ?all=true, block and delete; other domains (client blocking) call this too.
        """
        await self.redis.set(self.revoked_before_key(user_id), repr(time.time()), ex=self._grace())
        async with transaction(self.db) as conn:
            await refresh.revoke_user(conn, user_id)
        await self.kill_sessions(user_id)
        await self.publish_revoked(user_id, None)

    async def kill_sessions(self, user_id: int) -> int:
        """Delete every cookie session bound to the user (their next request starts anonymous)."""
        members: Any = await self.redis.smembers(self.user_sessions_key(user_id))
        names = [self.session_key(m.decode() if isinstance(m, bytes) else m) for m in members]
        await self.redis.delete(self.user_sessions_key(user_id))
        return int(await self.redis.delete(*names)) if names else 0

    async def not_before(self, user_id: int) -> int:
        """The smallest `iat` a new token of the user may carry.

        `iat` has whole seconds; a token issued in the same second as a logout-all would compare
        equal to the revocation time and be refused, so it gets the next second instead.
        """
        now = int(time.time())
        try:
            raw = await self.redis.get(self.revoked_before_key(user_id))
        except REDIS_ERRORS:
            return now          # nothing can be revoked while Redis is away, so nothing to step over
        return max(now, int(float(raw)) + 1) if raw is not None else now

    # ---- orders to open sockets, on every instance -----------------------------------------------
    async def publish_revoked(self, user_id: int, jti: str | None) -> None:
        """The sockets and SSE streams of the user holding `jti` (every one without a jti) close
        with 4001 (SPEC §2.1, §8.1); the user's other sockets are told `session.revoked`."""
        if self.bus is not None:
            await self.bus.publish_control(user_channel(user_id), REVOKE, jti=jti)

    async def password_changed(self, user_id: int) -> None:
        """A new password: every credential issued before it is refused by its fingerprint already
        (REST answers 401 password_changed); the sockets opened with them close now."""
        await self.publish_revoked(user_id, None)

    async def rights_changed(self, user_id: int) -> None:
        """The user's role or status changed: their sockets re-check every subscription."""
        if self.bus is not None:
            await self.bus.publish_control(user_channel(user_id), RECHECK)

    async def role_rights_changed(self, role_id: int) -> None:
        """A role's name or permissions changed: the sockets of every user of the role re-check."""
        if self.bus is not None:
            await self.bus.publish_control(role_target(role_id), RECHECK)


async def revocations_ctx(app: web.Application) -> AsyncIterator[None]:
    """Build the app's Revocations once Redis, the database and the bus are open."""
    config = app[keys.CONFIG]
    app[keys.REVOCATIONS] = Revocations(redis=app[keys.REDIS], db=app[keys.DB], bus=app.get(keys.BUS),
                                        prefix=config.redis_prefix, access_ttl=config.access_ttl)
    yield
