"""Every typed application and request key, in one place (STYLE 2.3).

A core module: it imports the classes it names only for type checking, so importing it pulls in
no domain and no layer above it (the import contracts in setup.cfg hold it to that).
"""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    import asyncpg
    from aiohttp_session import AbstractStorage
    from redis.asyncio import Redis, RedisCluster
    from sqlalchemy.ext.asyncio import AsyncEngine

    from backend.auth.lifecycle import UserLifecycle
    from backend.auth.revocation import Revocations
    from backend.auth.users import Identity
    from backend.callup.calls import Calls
    from backend.config import Config
    from backend.fleet.hooks import PassengerCarHooks
    from backend.metrics import Metrics
    from backend.principal import Principal
    from backend.realtime.bus import Bus
    from backend.realtime.channels import Channels
    from backend.realtime.hub import Hub
    from backend.sharing.free_cars import FreeCars

CONFIG: web.AppKey[Config] = web.AppKey("config")
DB: web.AppKey[AsyncEngine] = web.AppKey("db")
HOT_DB: web.AppKey[asyncpg.Pool] = web.AppKey("hot_db")     # raw asyncpg, only for backend.db.compiled() hot reads
REDIS: web.AppKey[Redis | RedisCluster] = web.AppKey("redis")   # a cluster with REDIS_CLUSTER
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")

PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal")   # set once by the auth middleware; absent = anonymous
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id")
# The user row behind a bearer principal, as the auth middleware read it (GET /api/auth/me/ answers from it).
IDENTITY: web.RequestKey[Identity] = web.RequestKey("identity")

INSTANCE: web.AppKey[str] = web.AppKey("instance")                   # unique per process (SPEC §11.4)
CONNECTION_COUNT: web.AppKey[Callable[[], int]] = web.AppKey("connection_count")   # set by realtime
ENDPOINTS: web.AppKey[list] = web.AppKey("endpoints")                # backend.api.routing.Endpoint records
OPENAPI_CACHE: web.AppKey[dict] = web.AppKey("openapi_cache")        # built on first request, routes are frozen then
ASYNCAPI_CACHE: web.AppKey[dict] = web.AppKey("asyncapi_cache")      # likewise, for /asyncapi.json
OPS_SAMPLES: web.AppKey[collections.deque] = web.AppKey("ops_samples")  # backend.ops.stats: recent counter samples

# Injected by auth so the layers below it (realtime) resolve credentials without importing auth:
# a request's sessid into a principal (or None), and an access token into a principal (or ApiError).
SESSION_RESOLVER: web.AppKey[Callable[[web.Request], Awaitable[Principal | None]]] = web.AppKey("session_resolver")
TOKEN_RESOLVER: web.AppKey[Callable[[web.Application, str], Awaitable[Principal]]] = web.AppKey("token_resolver")
# The same credential's principal with the user's current role and permissions, None when the user
# may no longer sign in: open sockets re-check their subscriptions with it when rights change.
PRINCIPAL_RELOADER: web.AppKey[Callable[[web.Application, Principal], Awaitable[Principal | None]]] = \
    web.AppKey("principal_reloader")
# The Origin rule of SPEC §2.4 for a request the sessid cookie authenticated: raises 403
# origin_not_allowed (ApiError) for a foreign Origin; /ws and /sse apply it before they answer.
ORIGIN_GUARD: web.AppKey[Callable[[web.Request], None]] = web.AppKey("origin_guard")
REVOCATIONS: web.AppKey[Revocations] = web.AppKey("revocations")              # backend.auth.revocation
SESSION_STORAGE: web.AppKey[AbstractStorage] = web.AppKey("session_storage")   # backend.auth.sessions
PASSWORD_POOL: web.AppKey[ThreadPoolExecutor] = web.AppKey("password_pool")     # argon2's threads (auth.passwords)
# Injected by callup: an X-Application-Token into a principal (auth's middleware calls it).
APP_TOKEN_RESOLVER: web.AppKey[Callable[[web.Application, str], Awaitable[Principal]]] = \
    web.AppKey("app_token_resolver")
# Hooks other domains register on auth's users and fleet's cars (inverted calls, no import cycle).
USER_LIFECYCLE: web.AppKey[UserLifecycle] = web.AppKey("user_lifecycle")
PASSENGER_CAR_HOOKS: web.AppKey[PassengerCarHooks] = web.AppKey("passenger_car_hooks")

# Realtime (backend/realtime): the bus, the hub, the channel registry, domain frame commands, open sockets.
BUS: web.AppKey[Bus] = web.AppKey("bus")
HUB: web.AppKey[Hub] = web.AppKey("hub")
FREE_CARS: web.AppKey[FreeCars] = web.AppKey("free_cars")   # backend.sharing.free_cars: GET /api/cars, encoded once
CHANNELS: web.AppKey[Channels] = web.AppKey("channels")
WS_COMMANDS: web.AppKey[dict] = web.AppKey("ws_commands")
SOCKETS: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("sockets")
# Set by realtime: which of these users have a live socket on any instance (SPEC §12.4, chat's `online`).
ONLINE: web.AppKey[Callable[[Collection[int]], Awaitable[set[int]]]] = web.AppKey("online")
# Injected by the domain that owns user cards: id → {"id", "username", "name"} (presence lists them).
USER_BRIEFS: web.AppKey[Callable[[AsyncEngine, Collection[int]], Awaitable[Mapping[int, dict[str, Any]]]]] = \
    web.AppKey("user_briefs")
# CallUp (backend/callup): this instance's background calls and their provider.
CALLUP_CALLS: web.AppKey[Calls] = web.AppKey("callup_calls")
