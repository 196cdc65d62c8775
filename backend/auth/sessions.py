"""Cookie sessions (SPEC §4.1): aiohttp-session's RedisStorage under our key prefix, cookie `sessid`.

Every response of a cookie surface to a request without a valid session sets a new one; signing
in binds the user and rotates the session id (no fixation); signing out unbinds and keeps it.
aiohttp-session's own middleware and get_session() keep the session under string request keys
(NotAppKeyWarning), so this module keeps it under a RequestKey and drives the storage itself.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from aiohttp_session import Session
from aiohttp_session.redis_storage import RedisStorage

from backend import keys
from backend.api.middlewares import from_http
from backend.api.surfaces import error_response, is_cookie_surface
from backend.auth.passwords import fingerprint_matches, stored_fingerprint
from backend.auth.principal import Principal
from backend.auth.revocation import (
    kill_sessions,
    publish_revoked,
    revoke_everything,
    session_key,
    user_sessions_key,
)
from backend.auth.tokens import password_changed
from backend.auth.users import Identity, fetch_identity
from backend.errors import ApiError, unauthorized
from backend.jsonutil import dumps, loads
from backend.kv import REDIS_ERRORS

log = logging.getLogger("backend.auth")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

COOKIE = "sessid"
SESSION = web.RequestKey("session", Session)
_MARK = "v"          # an anonymous session still holds this, so the storage never sees it as empty


def new_session_id() -> str:
    """A random session id of 256 bits (SPEC §4.1)."""
    return secrets.token_urlsafe(32)


class SessionStorage(RedisStorage):
    """RedisStorage whose Redis names go through redis_key (tests and deployments isolate by prefix)."""

    def __init__(self, app: web.Application) -> None:
        config = app[keys.CONFIG]
        super().__init__(app[keys.REDIS], cookie_name=COOKIE, max_age=config.session_ttl,
                         secure=config.cookie_secure, httponly=True, samesite="Lax",
                         key_factory=new_session_id, encoder=dumps, decoder=loads)
        self._app = app

    async def load_session(self, request: web.Request) -> Session:
        """The session named by the cookie, or a new anonymous one when it is missing or unknown."""
        cookie = self.load_cookie(request)
        if not cookie or len(cookie) > 128:
            return Session(None, data=None, new=True, max_age=self.max_age)
        try:
            raw = await self._redis.get(session_key(self._app, cookie))
        except REDIS_ERRORS:
            # Sessions live in Redis only: while it is away every cookie request is anonymous.
            log.warning("cookie session unreadable, Redis unavailable")
            raw = None
        try:
            data = loads(raw) if raw is not None else None
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return Session(None, data=None, new=True, max_age=self.max_age)
        return Session(cookie, data=data, new=False, max_age=self.max_age)

    async def save_session(self, request: web.Request, response: web.StreamResponse, session: Session) -> None:
        """Write the session to Redis and (re)send its cookie."""
        session.setdefault(_MARK, 1)
        key = str(session.identity or new_session_id())
        # Stored first: a failed write must not hand out a cookie that names nothing.
        await self._redis.set(session_key(self._app, key), self._encoder(self._get_session_data(session)),
                              ex=session.max_age)
        self.save_cookie(response, key, max_age=session.max_age)


async def sessions_ctx(app: web.Application) -> AsyncIterator[None]:
    """Build the storage once Redis is open (it needs the client)."""
    app[keys.SESSION_STORAGE] = SessionStorage(app)
    yield


async def current_session(request: web.Request) -> Session:
    """The request's session, loaded from Redis once."""
    if SESSION not in request:
        request[SESSION] = await request.app[keys.SESSION_STORAGE].load_session(request)
    return request[SESSION]


def _dirty(session: Session) -> bool:
    # aiohttp-session exposes no public "changed?" flag; its own middleware reads _changed too.
    return session.new or bool(getattr(session, "_changed", False))


@web.middleware
async def sessions(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Save changed sessions and give every cookie-surface response a session (errors included)."""
    try:
        response = await handler(request)
    except ApiError as err:
        response = error_response(request, err, dumps)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = error_response(request, from_http(exc), dumps)
    if response.prepared or isinstance(response, web.WebSocketResponse):
        return response
    session = request.get(SESSION)
    if session is None and is_cookie_surface(request.path):
        session = await current_session(request)
    if session is not None and (_dirty(session) and (is_cookie_surface(request.path) or not session.new
                                                     or len(session) > 0)):
        try:
            await request.app[keys.SESSION_STORAGE].save_session(request, response, session)
        except REDIS_ERRORS:
            # The answer stands; it just carries no new session (the next request tries again).
            log.warning("cookie session not saved, Redis unavailable")
    return response


async def sign_in(request: web.Request, identity: Identity) -> None:
    """Bind `identity` to the caller's session under a brand-new session id (no fixation)."""
    app = request.app
    redis = app[keys.REDIS]
    old = await current_session(request)
    if old.identity is not None:
        await redis.delete(session_key(app, str(old.identity)))
        if isinstance(old.get("uid"), int):
            await redis.srem(user_sessions_key(app, old["uid"]), str(old.identity))
    session = Session(new_session_id(), data=None, new=True, max_age=app[keys.CONFIG].session_ttl)
    session["uid"] = identity.id
    session["fp"] = stored_fingerprint(app[keys.CONFIG], identity.password_hash)
    request[SESSION] = session
    members = user_sessions_key(app, identity.id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.sadd(members, str(session.identity))
        pipe.expire(members, app[keys.CONFIG].session_ttl)
        await pipe.execute()


def session_mark(session_id: str) -> str:
    """What a socket signed in by this session answers to in `session.revoked` (never the id itself)."""
    return "sess:" + hashlib.sha256(session_id.encode()).hexdigest()[:24]


async def sign_out(request: web.Request) -> None:
    """Unbind the user from the session; the session id stays (seed 000). Sockets that this
    session signed in lose their rights too (SPEC §8.1)."""
    session = await current_session(request)
    user_id = session.get("uid")
    await unbind(request.app, session)
    if isinstance(user_id, int) and session.identity is not None:
        await publish_revoked(request.app, user_id, session_mark(str(session.identity)))


async def principal_from_session(request: web.Request) -> Principal | None:
    """The user bound to the request's `sessid`, None for no or an anonymous session; 401 when the
    bound user was blocked or deleted or changed the password (the session is unbound then)."""
    if COOKIE not in request.cookies:
        return None
    session = await current_session(request)
    user_id = session.get("uid")
    if not isinstance(user_id, int):
        return None
    identity = await fetch_identity(request.app[keys.HOT_DB], user_id)
    if identity is None or not identity.active:
        await sign_out(request)
        raise unauthorized("Пользователь заблокирован или удалён.", "user_inactive")
    if not fingerprint_matches(request.app[keys.CONFIG], session.get("fp"), identity.password_hash):
        await sign_out(request)
        raise password_changed()
    return identity.principal(via="session", client="session", jti=session_mark(str(session.identity)))


async def unbind(app: web.Application, session: Session) -> None:
    """Unbind the user from `session` (the id stays)."""
    user_id = session.pop("uid", None)
    session.pop("fp", None)
    if isinstance(user_id, int) and session.identity is not None:
        await app[keys.REDIS].srem(user_sessions_key(app, user_id), str(session.identity))


async def end_all_sessions(app: web.Application, user_id: int) -> int:
    """Delete every cookie session of the user; returns how many there were."""
    return await kill_sessions(app, user_id)


async def revoke_user(app: web.Application, user_id: int) -> None:
    """Every token, refresh token and session of the user dies (block, delete, logout all)."""
    await revoke_everything(app, user_id)


def setup(app: web.Application) -> None:
    """Open the storage after Redis and let the authenticate middleware resolve sessions."""
    app.cleanup_ctx.append(sessions_ctx)
    app[keys.SESSION_RESOLVER] = principal_from_session
