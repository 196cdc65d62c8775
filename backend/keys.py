"""Every typed application and request key, in one place (STYLE 2.3)."""

from __future__ import annotations

import weakref
from collections.abc import Callable

import asyncpg
from aiohttp import web
from aiohttp_session import AbstractStorage
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.auth.principal import Principal
from backend.callup.calls import Calls
from backend.config import Config
from backend.ops.metrics import Metrics
from backend.realtime.bus import Bus
from backend.realtime.channels import Channels
from backend.realtime.hub import Hub

CONFIG = web.AppKey("config", Config)
DB = web.AppKey("db", AsyncEngine)
HOT_DB = web.AppKey("hot_db", asyncpg.Pool)          # raw asyncpg, only for backend.db.compiled() hot reads
REDIS = web.AppKey("redis", Redis)
METRICS = web.AppKey("metrics", Metrics)

PRINCIPAL = web.RequestKey("principal", Principal)   # set once by the auth middleware; absent = anonymous
REQUEST_ID = web.RequestKey("request_id", str)

INSTANCE = web.AppKey("instance", str)                       # unique per process (SPEC §11.4)
CONNECTION_COUNT = web.AppKey("connection_count", Callable[[], int])   # set by realtime
ENDPOINTS = web.AppKey("endpoints", list)                    # backend.api.routing.Endpoint records
OPENAPI_CACHE = web.AppKey("openapi_cache", dict)            # built on first request, routes are frozen then
# Set by the cookie-session setup: resolves a request's sessid into a principal (or None).
SESSION_RESOLVER = web.AppKey("session_resolver", Callable)
SESSION_STORAGE = web.AppKey("session_storage", AbstractStorage)   # backend.auth.sessions.SessionStorage
# Realtime (backend/realtime): the bus, the hub, the channel registry, domain frame commands, open sockets.
BUS = web.AppKey("bus", Bus)
HUB = web.AppKey("hub", Hub)
CHANNELS = web.AppKey("channels", Channels)
WS_COMMANDS = web.AppKey("ws_commands", dict)
SOCKETS = web.AppKey("sockets", weakref.WeakSet)
# CallUp (backend/callup): this instance's background calls and their provider.
CALLUP_CALLS = web.AppKey("callup_calls", Calls)
