"""Cookie sessions (SPEC §4.1): an aiohttp-session storage in Redis under our key prefix, cookie `sessid`.

Every response of a cookie surface to a request without a valid session sets a new one; signing
in binds the user and rotates the session id (no fixation); signing out unbinds and keeps it.
aiohttp-session's own middleware and get_session() keep the session under string request keys
(NotAppKeyWarning), so this module keeps it under a RequestKey and drives the storage itself.

A session id is 256 random bits plus their HMAC (`<random>.<mac>`), so an id is valid without
being stored: Redis holds a session only once something was written to it (sign-in). Anonymous
traffic, however much of it, stores nothing, and an id nobody signed is no session at all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator

from aiohttp import hdrs, web
from aiohttp_session import AbstractStorage, Session

from backend import keys
from backend.api.surfaces import is_cookie_surface
from backend.auth.passwords import fingerprint_matches, stored_fingerprint
from backend.auth.resolve import lookup
from backend.auth.tokens import password_changed
from backend.auth.users import Identity
from backend.errors import redis_unavailable, unauthorized
from backend.jsonutil import dumps, loads
from backend.kv import REDIS_ERRORS, PoolExhausted
from backend.principal import Principal

log = logging.getLogger("backend.auth")


COOKIE = "sessid"
SESSION = web.RequestKey("session", Session)
# The ids' MAC keys are derived from the JWT keys under this label, so a session MAC can never be
# mistaken for (or help forge) anything else those keys sign.
_MAC_LABEL = b"sessid-cookie"
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{22}$")   # 256 random bits . 128-bit MAC


def _mac(key: bytes, random_part: str) -> str:
    digest = hmac.new(key, random_part.encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class SessionStorage(AbstractStorage):
    """aiohttp-session's storage in Redis, with names through redis_key (tests and deployments isolate
    by prefix), signed ids and a write only when the session holds something. Not its RedisStorage:
    that one refuses a RedisCluster client (REDIS_CLUSTER), and every method it has is replaced here."""

    def __init__(self, app: web.Application) -> None:
        config = app[keys.CONFIG]
        super().__init__(cookie_name=COOKIE, max_age=config.session_ttl, secure=config.cookie_secure,
                         httponly=True, samesite="Lax", encoder=dumps, decoder=loads)
        self._redis = app[keys.REDIS]       # one session, one key: any client, single or cluster
        self._names = app[keys.REVOCATIONS]   # where sessions live in Redis (and how they are revoked)
        # The first JWT key signs, all of them verify: rotating JWT_SECRETS keeps the sessions.
        self._mac_keys = tuple(hmac.new(secret.encode(), _MAC_LABEL, hashlib.sha256).digest()
                               for _, secret in config.jwt_keys)
        self._attributes_at, self._attributes_text = 0, ""

    def new_id(self) -> str:
        """A fresh session id (SPEC §4.1: 256 random bits), signed, valid before anything is stored."""
        random_part = secrets.token_urlsafe(32)
        return f"{random_part}.{_mac(self._mac_keys[0], random_part)}"

    def is_valid(self, session_id: str | None) -> bool:
        """True for an id this service signed (stored or not)."""
        if not session_id or not _SESSION_ID.match(session_id):
            return False
        random_part, _, mac = session_id.partition(".")
        return any(hmac.compare_digest(_mac(key, random_part), mac) for key in self._mac_keys)

    async def load_session(self, request: web.Request) -> Session:
        """The session the cookie names; a new one when the cookie is missing or not ours."""
        cookie = self.load_cookie(request)
        if not self.is_valid(cookie):
            return Session(None, data=None, new=True, max_age=self.max_age)
        # In a batch with the other session and bearer checks of this loop tick (auth.resolve).
        name = self._names.session_key(str(cookie))
        read = await lookup(request.app, None, name)
        if isinstance(read.redis_error, PoolExhausted):
            # An overloaded instance, not an outage: a signed-in caller must not be told it is
            # anonymous (401, or a cookie surface that forgets its sign-in) while Redis is fine.
            raise redis_unavailable() from read.redis_error
        if read.redis_error is not None:
            raise read.redis_error.with_traceback(None)
        # No values: Redis is away (the batch warned), and sessions live in Redis only, so every
        # cookie request is anonymous until it returns.
        raw = read.values.get(name) if read.values is not None else None
        try:
            data = loads(raw) if raw is not None else None
        except ValueError:
            data = None
        # Nothing stored under a valid id: an anonymous session that keeps its id.
        return Session(cookie, data=data if isinstance(data, dict) else None, new=False, max_age=self.max_age)

    async def save_session(self, request: web.Request, response: web.StreamResponse, session: Session) -> None:
        """Store the session while it holds something, forget it once emptied, (re)send its cookie."""
        key = str(session.identity or self.new_id())
        name = self._names.session_key(key)
        # Written first: a failed write must not hand out a cookie that names a lost sign-in.
        if len(session):
            await self._redis.set(name, self._encoder(self._get_session_data(session)), ex=session.max_age)
        else:
            await self._redis.delete(name)      # signed out: the id stays valid, anonymous again
        self.save_cookie(response, key, max_age=session.max_age)

    def send_new_id(self, response: web.StreamResponse) -> None:
        """Give the caller a session id without storing anything (SPEC §4.1 on an anonymous request).

        Every bearer or anonymous answer of a cookie surface does this: the header is written from
        attributes formatted once a second, not through a cookie jar per response (issue 11).
        """
        response.headers.add(hdrs.SET_COOKIE, f"{COOKIE}={self.new_id()}{self._attributes()}")

    def _attributes(self) -> str:
        """`; expires=…; HttpOnly; Max-Age=…; Path=/; SameSite=Lax` as save_cookie writes them now."""
        now = int(time.time())
        if self._attributes_at != now:
            probe = web.Response()
            self.save_cookie(probe, "x", max_age=self.max_age)
            self._attributes_text = probe.cookies[COOKIE].OutputString()[len(f"{COOKIE}=x"):]
            self._attributes_at = now
        return self._attributes_text


async def sessions_ctx(app: web.Application) -> AsyncIterator[None]:
    """Build the storage once Redis is open (it needs the client)."""
    app[keys.SESSION_STORAGE] = SessionStorage(app)
    yield


async def current_session(request: web.Request) -> Session:
    """The request's session, loaded from Redis once."""
    if SESSION not in request:
        request[SESSION] = await request.app[keys.SESSION_STORAGE].load_session(request)
    return request[SESSION]


def storage_of(app: web.Application) -> SessionStorage:
    """The app's session storage, typed (keys.py only knows the aiohttp-session base class)."""
    storage = app[keys.SESSION_STORAGE]
    assert isinstance(storage, SessionStorage)
    return storage


def _changed(session: Session) -> bool:
    # aiohttp-session exposes no public "changed?" flag; its own middleware reads _changed too.
    return bool(getattr(session, "_changed", False))


async def finish_session(request: web.Request, response: web.StreamResponse) -> None:
    """Save a changed session and give every cookie-surface answer a session id (errors included);
    an `after` step of the app's middleware (backend.api.middlewares.pipeline).

    Only a written session reaches Redis; a caller without a valid id gets a signed, unstored one,
    so anonymous and bearer traffic on cookie paths writes nothing.
    """
    if isinstance(response, web.WebSocketResponse):
        return
    storage = storage_of(request.app)
    session = request.get(SESSION)
    if session is not None and _changed(session):
        try:
            await storage.save_session(request, response, session)
        except REDIS_ERRORS:
            # The answer stands; it just carries no new session (the next request tries again).
            log.warning("cookie session not saved, Redis unavailable")
    elif is_cookie_surface(request.path) and not storage.is_valid(storage.load_cookie(request)):
        storage.send_new_id(response)


async def sign_in(request: web.Request, identity: Identity) -> None:
    """Bind `identity` to the caller's session under a brand-new session id (no fixation)."""
    app = request.app
    redis = app[keys.REDIS]
    names = app[keys.REVOCATIONS]
    old = await current_session(request)
    if old.identity is not None:
        await redis.delete(names.session_key(str(old.identity)))
        if isinstance(old.get("uid"), int):
            await redis.srem(names.user_sessions_key(old["uid"]), str(old.identity))
    session = Session(storage_of(app).new_id(), data=None, new=True, max_age=app[keys.CONFIG].session_ttl)
    session["uid"] = identity.id
    session["fp"] = stored_fingerprint(app[keys.CONFIG], identity.password_hash)
    request[SESSION] = session
    members = names.user_sessions_key(identity.id)
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
        await request.app[keys.REVOCATIONS].publish_revoked(user_id, session_mark(str(session.identity)))


async def principal_from_session(request: web.Request) -> Principal | None:
    """The user bound to the request's `sessid`, None for no or an anonymous session; 401 when the
    bound user was blocked or deleted or changed the password (the session is unbound then)."""
    # Most requests carry no cookie at all (bearer clients, health checks): no parse for them.
    if "Cookie" not in request.headers or COOKIE not in request.cookies:
        return None
    session = await current_session(request)
    user_id = session.get("uid")
    if not isinstance(user_id, int):
        return None
    read = await lookup(request.app, user_id)      # batched like the bearer checks (auth.resolve)
    if read.db_error is not None:
        raise read.db_error.with_traceback(None)
    identity = read.identities.get(user_id)
    if identity is None or not identity.active:
        await sign_out(request)
        raise unauthorized("Пользователь заблокирован или удалён.", "user_inactive")
    if not fingerprint_matches(request.app[keys.CONFIG], session.get("fp"), identity.password_hash):
        await sign_out(request)
        raise password_changed()
    request[keys.IDENTITY] = identity       # as for a bearer: /api/auth/me/ answers from it, no second query
    return identity.principal(via="session", client="session", jti=session_mark(str(session.identity)))


async def unbind(app: web.Application, session: Session) -> None:
    """Unbind the user from `session` (the id stays)."""
    user_id = session.pop("uid", None)
    session.pop("fp", None)
    if isinstance(user_id, int) and session.identity is not None:
        await app[keys.REDIS].srem(app[keys.REVOCATIONS].user_sessions_key(user_id), str(session.identity))


def setup(app: web.Application) -> None:
    """Open the storage after Redis and let the authenticate step resolve sessions."""
    app.cleanup_ctx.append(sessions_ctx)
    app[keys.SESSION_RESOLVER] = principal_from_session
