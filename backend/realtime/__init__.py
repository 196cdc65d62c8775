"""Realtime: the Redis pub/sub bus, the websocket hub, the channel registry and GET /ws (SPEC §8).

Domains publish with `await app[keys.BUS].publish(channel, event, data)` after their
transaction has committed, and declare channels with `app[keys.CHANNELS].add(Namespace(...))`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from aiohttp import WSCloseCode, web
from pydantic import BaseModel, TypeAdapter
from redis.asyncio import RedisCluster

from backend import keys

if TYPE_CHECKING:
    from backend.realtime.connection import Command

SHUTDOWN_CLOSE_TIMEOUT = 2.0


async def bus_ctx(app: web.Application) -> AsyncIterator[None]:
    """Start the instance's one pub/sub listener (after Redis is open); stop it on cleanup."""
    from backend.realtime.bus import Bus
    from backend.realtime.hub import Hub
    from backend.realtime.link import pubsub_client
    from backend.realtime.presence import Presence
    from backend.realtime.shards import ClusterBus

    config = app[keys.CONFIG]
    if config.redis_url is None:             # redis_ctx, opened before this, already refuses it
        raise RuntimeError("REDIS_URL is not set")
    redis = app[keys.REDIS]
    listener = None
    bus: Bus
    if isinstance(redis, RedisCluster):
        # Sharded pub/sub, one connection per shard in use (SPEC §13.1).
        bus = ClusterBus(redis, config.redis_url, config.redis_prefix, app[keys.METRICS], app[keys.CHANNELS],
                         history_size=config.history_size, history_ttl=config.history_ttl)
    else:
        listener = pubsub_client(config.redis_url)
        bus = Bus(redis, listener, config.redis_prefix, app[keys.METRICS], app[keys.CHANNELS],
                  history_size=config.history_size, history_ttl=config.history_ttl)
    app[keys.BUS] = bus
    presence = Presence(redis, bus.redis_channel, app[keys.INSTANCE], config.presence_ttl,
                        lambda user_id, login: describe_user(app, user_id, login),
                        cluster=isinstance(redis, RedisCluster))
    app[keys.HUB] = hub = Hub(bus, app[keys.METRICS], presence)
    app[keys.CONNECTION_COUNT] = lambda: len(hub.connections)
    app[keys.ONLINE] = presence.online
    bus.start()
    presence.start()
    yield
    await presence.stop()
    await bus.stop()
    if listener is not None:
        await listener.aclose()


async def describe_user(app: web.Application, user_id: int, login: str | None) -> dict[str, Any]:
    """{"id", "username", "name"} of a present user, through the directory a domain injected."""
    briefs = app.get(keys.USER_BRIEFS)
    if briefs is not None:
        found = (await briefs(app[keys.DB], [user_id])).get(user_id)
        if found is not None:
            return dict(found)
    # No directory (realtime alone, as in its own tests): the login is the default username.
    return {"id": user_id, "username": login or "", "name": ""}


async def close_sockets(app: web.Application) -> None:
    """Graceful shutdown: every websocket is closed with 1001 before the resources go."""
    sockets = tuple(app[keys.SOCKETS])
    if not sockets:
        return
    # All at once and bounded: each close waits for the peer's answer, and a dead peer would
    # otherwise hold the shutdown for the websocket's own 10 s close timeout.
    closing = [asyncio.ensure_future(ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown"))
               for ws in sockets]
    _, late = await asyncio.wait(closing, timeout=SHUTDOWN_CLOSE_TIMEOUT)
    for task in late:
        task.cancel()


def setup(app: web.Application) -> None:
    """Declare the identity-level namespaces and the routes."""
    from backend.api.routing import permission, route
    from backend.principal import Permission
    from backend.realtime.channels import (
        INT_ID,
        Channels,
        Namespace,
        dashboard_viewers,
        only_that_app,
        only_that_user,
    )
    from backend.realtime.handlers import (
        HistoryOut,
        HistoryQuery,
        PublishIn,
        PublishOut,
        history,
        publish,
        websocket,
    )
    from backend.realtime.sse import sse

    if keys.CHANNELS not in app:
        app[keys.CHANNELS] = Channels()
    app[keys.CHANNELS].add(Namespace("user", authorize=only_that_user, rest=INT_ID))
    app[keys.CHANNELS].add(Namespace("app", authorize=only_that_app, rest=INT_ID))
    app[keys.CHANNELS].add(Namespace("dashboard", authorize=dashboard_viewers, presence=True))
    app[keys.WS_COMMANDS] = {}
    # A plain set, emptied by the /ws handler's `finally`: a WeakSet entry (a weakref and its callback)
    # cost ≈ 0.4 KB per idle socket (bench KB/conn).
    app[keys.SOCKETS] = set()
    app.on_shutdown.append(close_sockets)
    app.router.add_get("/ws", websocket)
    app.router.add_get("/sse", sse)
    route(app, "POST", "/api/realtime/publish", publish, summary="Publish an event to a channel",
          tag="realtime", body=PublishIn, response=PublishOut, auth=permission(Permission.IS_ADMIN), slash_optional=False)
    # Rights are the channel's own (as for subscribing), judged by the handler: anyone may ask.
    route(app, "GET", "/api/realtime/history", history, summary="A channel's recent events (SPEC §12.2)",
          tag="realtime", query=HistoryQuery, response=HistoryOut, responses=(403, 404))


def register_command(app: web.Application, frame_type: str, model: type[BaseModel], handler: Command) -> None:
    """Let a domain answer a client frame type (chat: send/typing/read), validated by `model`."""
    from backend.realtime.frames import CORE_TYPES

    commands = app[keys.WS_COMMANDS]
    if frame_type in CORE_TYPES or frame_type in commands:
        raise ValueError(f"websocket frame type {frame_type!r} registered twice")
    commands[frame_type] = (TypeAdapter(model), handler)
