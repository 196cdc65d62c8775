"""Resolve a request's credentials into one Principal (SPEC §2.1): Bearer, then session, then app token.

The deny-list and user lookups of every access token checked in one loop tick share one round trip
to Redis and one to PostgreSQL (`lookup`, below).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from backend import keys
from backend.auth.passwords import password_fingerprint
from backend.auth.tokens import Claims, decode_access, invalid_token, password_changed
from backend.auth.users import Identity, fetch_identities
from backend.errors import ApiError, redis_unavailable, unauthorized
from backend.kv import REDIS_ERRORS, PoolExhausted, get_many
from backend.principal import Principal

log = logging.getLogger("backend.auth")

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
    names = app[keys.REVOCATIONS]
    deny, before = names.deny_key(claims.jti), names.revoked_before_key(claims.user_id)
    read = await lookup(app, claims.user_id, deny, before)
    if read.redis_error is not None:
        if isinstance(read.redis_error, PoolExhausted):
            # Redis is up but this instance is saturated: failing open here would let whoever floods
            # the pool use a logged-out token. 503 (in the surface's style; /ws and /sse: no upgrade).
            raise redis_unavailable() from read.redis_error
        raise read.redis_error.with_traceback(None)
    # read.values is None without Redis: REST keeps working (SPEC §8.4): signature, expiry, user
    # state and the password fingerprint are still checked; only logouts of the last ACCESS_TTL are unseen.
    values = read.values or {}
    if values.get(deny) is not None:
        raise invalid_token()
    if read.db_error is not None:
        raise read.db_error.with_traceback(None)       # shared by the batch: a traceback of its own
    identity = read.identities.get(claims.user_id)
    if identity is None or not identity.active:
        raise blocked_user()
    if password_fingerprint(claims.secret, identity.password_hash) != claims.pwd_fp:
        raise password_changed()
    revoked_before = values.get(before)
    if revoked_before is not None and claims.iat <= float(revoked_before):
        raise invalid_token()
    return identity, claims


async def reload_principal(app: web.Application, principal: Principal) -> Principal | None:
    """`principal`'s credential with the user's current role and permissions (open sockets re-check
    their subscriptions with it); None when the user was deleted or blocked meanwhile."""
    if principal.user_id is None:
        return principal                  # an app's rights are its token's, not a role's
    # A role's change re-checks every socket of its users at once: they share the batch's query.
    read = await lookup(app, principal.user_id)
    if read.db_error is not None:
        raise read.db_error.with_traceback(None)
    identity = read.identities.get(principal.user_id)
    if identity is None or not identity.active:
        return None
    return identity.principal(via=principal.via, client=principal.client, jti=principal.token_jti,
                              exp=principal.token_exp)


# ---- lookups in batches, one round trip per store each (issue 11) ---------------------------------
#
# Every bearer request, /ws upgrade and socket re-check reads the deny-list in Redis and the user's
# row in PostgreSQL: ≈ 0.2 ms of CPU, a round trip and a pooled connection per store each. A
# reconnect storm brings them by the hundred; batched, they share one MGET (one per slot on a cluster:
# kv.get_many) and one `WHERE id = ANY($1)`, sent at the same time (bench: ≈ 25 µs of CPU per lookup
# at 100 at once, ≈ 0.2 ms alone). A batch is sent at the end of the loop tick it was opened in, or,
# while another batch of the app is being read, as soon as that read ends (at most MAX_WAIT later):
# a lone request waits for nothing, and under load batches grow with the load. A lookup only
# joins a batch not sent yet, so whatever it reads was read after it arrived: a logout or a block
# completed before the request is always seen, as with a query of its own.

MAX_BATCH = 256          # lookups per batch: bounds one MGET's keys and one query's ids
MAX_WAIT = 0.02          # seconds a batch waits for the read in progress before it is sent anyway


@dataclass(slots=True)
class BatchRead:
    """What one batch read, shared by its lookups; each judges its own token from it."""

    values: dict[str, Any] | None = None          # Redis key → value; None: Redis unavailable (fail open)
    redis_error: BaseException | None = None      # an exhausted pool (503) or an unexpected error
    identities: dict[int, Identity] = field(default_factory=dict)
    db_error: BaseException | None = None


class _Batch:
    """Lookups not sent yet, and the future of what their one read will find."""

    __slots__ = ("keys", "lookups", "read", "sent", "user_ids")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.keys: set[str] = set()
        self.user_ids: set[int] = set()
        self.lookups = 0
        self.sent = False
        self.read: asyncio.Future[BatchRead] = loop.create_future()


class _Reader:
    """One app's batches: the one gathering lookups, and how many are being read."""

    __slots__ = ("app", "gathering", "reading")

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.gathering: _Batch | None = None
        self.reading = 0

    def send(self, batch: _Batch) -> None:
        """Start reading `batch`; lookups from now on gather in the next one."""
        if batch.sent:
            return
        batch.sent = True
        if self.gathering is batch:
            self.gathering = None
        self.reading += 1
        task = asyncio.get_running_loop().create_task(_read(self.app, batch))
        _tasks.add(task)
        task.add_done_callback(self._read_done)

    def _read_done(self, task: asyncio.Task[None]) -> None:
        _tasks.discard(task)
        self.reading -= 1
        if self.gathering is not None:
            self.send(self.gathering)            # what came while the last batch was read
        elif not self.reading and _readers.get(self.app) is self:
            del _readers[self.app]               # idle: nothing kept between bursts


_readers: dict[web.Application, _Reader] = {}        # apps with a batch gathering or being read
_tasks: set[asyncio.Task[None]] = set()              # reads in progress (a reference, or GC may drop them)


async def lookup(app: web.Application, user_id: int | None, *redis_keys: str) -> BatchRead:
    """The user's identity (None: no user) and the values of `redis_keys`, read in a batch with
    other lookups."""
    reader = _readers.get(app)
    if reader is None:
        reader = _readers[app] = _Reader(app)
    batch = reader.gathering
    if batch is None:
        loop = asyncio.get_running_loop()
        batch = reader.gathering = _Batch(loop)
        if reader.reading:
            # Sent when the read in progress ends, or after MAX_WAIT if that read is slow (a Redis or
            # database in trouble must not hold every request behind it for its whole timeout).
            loop.call_later(MAX_WAIT, reader.send, batch)
        else:
            loop.call_soon(reader.send, batch)   # at the end of this tick
    batch.lookups += 1
    if user_id is not None:
        batch.user_ids.add(user_id)
    batch.keys.update(redis_keys)
    if batch.lookups >= MAX_BATCH:
        reader.send(batch)
    # Shielded: a caller that goes away (a client hung up) must not cancel the read of the others.
    return await asyncio.shield(batch.read)


async def _read(app: web.Application, batch: _Batch) -> None:
    """One MGET and one identity query for the whole batch, at the same time."""
    read = BatchRead()
    names = list(batch.keys)
    values = asyncio.ensure_future(get_many(app[keys.REDIS], *names)) if names else None
    try:
        try:
            if batch.user_ids:
                read.identities = await fetch_identities(app[keys.HOT_DB], batch.user_ids)
        except Exception as exc:
            read.db_error = exc                      # each lookup raises it, after the deny-list verdict
        if values is not None:
            try:
                read.values = dict(zip(names, await values, strict=True))
            except PoolExhausted as exc:
                log.warning("deny-list and sessions unread, Redis pool exhausted")
                read.redis_error = exc
            except REDIS_ERRORS:
                log.warning("deny-list and sessions unread, Redis unavailable")
            except Exception as exc:
                read.redis_error = exc
        batch.read.set_result(read)
    finally:
        if values is not None and not values.done():
            values.cancel()
        if not batch.read.done():
            batch.read.cancel()                     # this task was cancelled (shutdown): so are the lookups


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
