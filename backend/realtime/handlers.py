"""GET /ws (SPEC §8.1) and the server publish API POST /api/realtime/publish (SPEC §8.5)."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import WSMsgType, web
from pydantic import BaseModel, Field
from redis.exceptions import RedisError

from backend import keys
from backend.api.access import check, current_user
from backend.api.validation import read_json
from backend.errors import field_error, redis_unavailable, unauthorized
from backend.jsonutil import dumps, loads
from backend.kv import redis_key
from backend.realtime import const
from backend.realtime.connection import Connection
from backend.realtime.frames import error_frame

log = logging.getLogger("backend.realtime")

URL_TOKEN_PARAMS = ("token", "access_token", "jwt", "auth", "access")
IDEMPOTENCY_TTL = 300


async def websocket(request: web.Request) -> web.StreamResponse:
    """GET /ws: authenticate at upgrade (or by a first `auth` frame), then serve frames."""
    if any(name in request.query for name in URL_TOKEN_PARAMS):
        # Tokens in URLs end up in logs and browser history (SPEC §3.3, §8.1).
        raise unauthorized("Токен нельзя передавать в адресе запроса.", "token_in_url")
    principal = request.get(keys.PRINCIPAL)     # resolved by the authenticate middleware
    app = request.app
    config = app[keys.CONFIG]
    # aiohttp 3.14 refuses an uncompressed message of exactly max_msg_size (its check is `>=`),
    # so one byte more makes MAX_FRAME itself the largest accepted; tests pin both sides.
    ws = web.WebSocketResponse(heartbeat=config.ws_heartbeat, max_msg_size=const.MAX_FRAME + 1,
                               compress=False)
    await ws.prepare(request)
    conn = Connection(app, ws, request, principal)
    hub = app[keys.HUB]
    hub.connections.add(conn)
    app[keys.SOCKETS].add(ws)
    metrics = app[keys.METRICS]
    metrics.ws_connections.inc()
    try:
        if principal is not None:
            await conn.become(principal)
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await conn.handle_text(message.data)
            elif message.type == WSMsgType.BINARY:
                await conn.send(error_frame(const.INVALID_FRAME))
    finally:
        hub.connections.discard(conn)
        metrics.ws_connections.dec()
        await conn.release()
    return ws


class PublishIn(BaseModel):
    channel: str = Field(min_length=1, max_length=200)
    event: str = Field(min_length=1, max_length=100)
    data: Any = None
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)


class PublishOut(BaseModel):
    channel: str
    event: str
    subscribers_local: int


async def publish(request: web.Request) -> web.Response:
    """POST /api/realtime/publish: admins (and scripts) publish like a domain does."""
    check(current_user(request), "is_admin")
    data = await read_json(request, PublishIn)
    app = request.app
    if not app[keys.CHANNELS].knows(data.channel):
        raise field_error("channel", "Канал не соответствует ни одному объявленному пространству имён.")
    result = PublishOut(channel=data.channel, event=data.event,
                        subscribers_local=app[keys.HUB].local_count(data.channel)).model_dump()
    if data.idempotency_key is not None:
        # SET NX decides, across instances, which request publishes; the others answer its result.
        key = redis_key(app, "rt", "idem", data.idempotency_key)
        try:
            first = await app[keys.REDIS].set(key, dumps(result), nx=True, ex=IDEMPOTENCY_TTL)
            if not first:
                previous = await app[keys.REDIS].get(key)
                if previous is not None:
                    return web.json_response(loads(previous))
        except (RedisError, OSError) as exc:
            raise redis_unavailable() from exc
    await app[keys.BUS].publish(data.channel, data.event, data.data)
    return web.json_response(result)
