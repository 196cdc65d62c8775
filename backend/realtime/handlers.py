"""GET /ws (SPEC §8.1), the publish API (SPEC §8.5) and the history API (SPEC §12.2)."""

from __future__ import annotations

import functools
import logging
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from backend import keys
from backend.api.responses import respond
from backend.api.validation import read_json, read_query
from backend.errors import field_error, forbidden, not_found, redis_unavailable, unauthorized
from backend.jsonutil import loads
from backend.kv import REDIS_ERRORS
from backend.principal import Principal
from backend.realtime import const
from backend.realtime.channels import FrameError, Namespace
from backend.realtime.websocket import ServedSocket, release_http_parser, serve

log = logging.getLogger("backend.realtime")

URL_TOKEN_PARAMS = ("token", "access_token", "jwt", "auth", "access")


async def websocket(request: web.Request) -> web.StreamResponse:
    """GET /ws: authenticate at upgrade (or by a first `auth` frame), then serve frames."""
    # request.query only when there is one: parsing it caches a MultiDict on the request, which
    # every idle socket would then hold (≈ 0.2 KB each, bench KB/conn).
    if request.query_string and any(name in request.query for name in URL_TOKEN_PARAMS):
        # Tokens in URLs end up in logs and browser history (SPEC §3.3, §8.1).
        raise unauthorized("Токен нельзя передавать в адресе запроса.", "token_in_url")
    principal = request.get(keys.PRINCIPAL)     # resolved by the authenticate middleware
    # The user row the bearer check read stays with the request for /api/auth/me/; a socket holds
    # its request for life and needs only the principal (≈ 0.5 KB per idle socket, bench KB/conn).
    request.pop(keys.IDENTITY, None)
    guard_origin(request)
    # aiohttp 3.14 refuses an uncompressed message of exactly max_msg_size (its check is `>=`),
    # so one byte more makes MAX_FRAME itself the largest accepted; tests pin both sides.
    ws = ServedSocket(functools.partial(serve, request, principal), max_msg_size=const.MAX_FRAME + 1)
    await ws.prepare(request)
    # The 101's headers are on the wire: kept, they are ≈ 1 KB of every idle socket (bench KB/conn).
    ws.headers.clear()
    release_http_parser(request)
    return ws           # served by aiohttp's finishing of the response, past the middleware (websocket.py)


class PublishIn(BaseModel):
    channel: str = Field(min_length=1, max_length=200)
    event: str = Field(min_length=1, max_length=100)
    data: Any = None
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)


class PublishOut(BaseModel):
    channel: str
    event: str
    subscribers_local: int
    offset: int | None = Field(None, description="The event's offset in the channel's stream (SPEC §12.1); "
                                                 "null for ephemeral events")
    epoch: str | None = None


async def publish(request: web.Request) -> web.Response:
    """POST /api/realtime/publish: admins (and scripts) publish like a domain does."""
    data = await read_json(request, PublishIn)
    app = request.app
    if app[keys.CHANNELS].find(data.channel) is None:
        # The registry subscribe uses: a name no namespace accepts (`cars:1`) has no subscriber.
        raise field_error("channel", "Канал не соответствует ни одному объявленному пространству имён.")
    local = app[keys.HUB].local_count(data.channel)
    try:
        # The idempotency record is checked and written by the script that publishes (SPEC §8.5):
        # a repeat publishes nothing and answers the first result; there is no "recorded but lost".
        published = await app[keys.BUS].publish_event(data.channel, data.event, data.data,
                                                       idempotency_key=data.idempotency_key, remember=str(local))
    except REDIS_ERRORS as exc:
        raise redis_unavailable() from exc
    if not published.first:
        local = int(published.remembered or 0)
    result = PublishOut(channel=data.channel, event=data.event, subscribers_local=local,
                        offset=published.offset or None, epoch=published.epoch or None)
    return respond(result)


class HistoryQuery(BaseModel):
    channel: str = Field(min_length=1, max_length=200)
    since: int | None = Field(None, ge=0, le=2**63 - 1, description="The last offset the client holds")
    epoch: str | None = Field(None, min_length=1, max_length=64, description="The epoch `since` belongs to")
    limit: int = Field(100, ge=1, le=const.HISTORY_LIMIT_MAX)


class HistoryOut(BaseModel):
    channel: str
    epoch: str
    offset: int = Field(description="The channel's current top offset")
    recovered: bool = Field(description="True when `events` start right after `since`: nothing was lost")
    events: list[dict[str, Any]] = Field(description="Event frames, as /ws sends them, in offset order")


async def history(request: web.Request) -> web.Response:
    """GET /api/realtime/history: what a socket would recover, for clients without one (SPEC §12.2)."""
    query = read_query(request, HistoryQuery)
    if (query.since is None) != (query.epoch is None):
        raise field_error("epoch", "since и epoch передаются вместе.")
    app = request.app
    namespace, _ = await authorized(app, request.get(keys.PRINCIPAL), query.channel)
    if not namespace.stream:
        raise not_found("Канал не хранит историю.")
    try:
        position = await app[keys.BUS].streams.read(query.channel, query.since, query.epoch, query.limit)
    except REDIS_ERRORS as exc:
        raise redis_unavailable() from exc
    frames = position.frames if query.since is None or position.recovered else []
    body = HistoryOut(channel=query.channel, epoch=position.epoch, offset=position.top,
                      recovered=position.recovered, events=[loads(frame) for frame in frames])
    return respond(body)


def guard_origin(request: web.Request) -> None:
    """Before an upgrade or a stream: the Origin rule of cookie-authenticated requests (SPEC §2.4),
    as auth injected it (403 origin_not_allowed in the surface's style; nothing is upgraded)."""
    guard = request.app.get(keys.ORIGIN_GUARD)
    if guard is not None:
        guard(request)


async def authorized(app: web.Application, principal: Principal | None, channel: str) -> tuple[Namespace, str]:
    """The namespace of `channel` if `principal` may subscribe to it: 404 unknown, 403 not allowed."""
    try:
        namespace, rest = app[keys.CHANNELS].lookup(channel)
    except FrameError:
        raise not_found("Неизвестный канал.", const.UNKNOWN_CHANNEL) from None
    if not await namespace.authorize(app[keys.DB], principal, rest):
        raise forbidden(const.MESSAGES[const.FORBIDDEN], const.FORBIDDEN)
    return namespace, rest
