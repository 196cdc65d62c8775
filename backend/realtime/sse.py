"""GET /sse?channel=NAME: one channel as server-sent events (SPEC §12.3), for dashboards and `curl -N`.

Same principal and rights as /ws; each event is `id: <epoch>:<offset>`, `event: <name>`,
`data: <the /ws event frame>`. `Last-Event-ID` recovers like a `subscribe` with `since`. The hub
writes to an SSE stream as to a websocket — synchronously, bounded by WS_SEND_BUFFER — so a slow
reader is cut off instead of growing memory or stalling the fan-out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiohttp import web

from backend import keys
from backend.errors import field_error, unauthorized
from backend.jsonutil import dumpb, loads
from backend.kv import REDIS_ERRORS
from backend.principal import Principal
from backend.realtime import const
from backend.realtime.channels import FrameError, own_channel
from backend.realtime.frames import websocket_text_frame
from backend.realtime.handlers import URL_TOKEN_PARAMS, authorized, guard_origin
from backend.realtime.hub import Hub
from backend.realtime.streams import Position

log = logging.getLogger("backend.realtime")

CLOSED_POLL = 1.0        # seconds between checks that the client is still there (aiohttp does not cancel us)


class SseStream:
    """The hub's view of one SSE response: push() turns a prebuilt websocket frame into an event."""

    __slots__ = ("__weakref__", "_app", "_limit", "_metrics", "channel", "closed", "epoch", "principal",
                 "transport")

    def __init__(self, request: web.Request, principal: Principal | None, channel: str) -> None:
        self.transport = request.transport
        self.principal = principal
        self.channel = channel
        self._app = request.app
        self._limit = request.app[keys.CONFIG].ws_send_buffer
        self._metrics = request.app[keys.METRICS]
        self.epoch = ""
        self.closed = asyncio.Event()

    def push(self, frame: bytes) -> bool:
        """Write one event (given as its websocket frame); a reader over WS_SEND_BUFFER is cut off."""
        payload = _payload(frame)
        event = loads(payload)
        if not isinstance(event, dict) or event.get("type") != "event":
            return False
        head = b""
        if "offset" in event:
            head = f"id: {self.epoch}:{event['offset']}\n".encode()
        name = str(event.get("event", "message")).replace("\n", " ")
        return self.write(head + f"event: {name}\n".encode() + b"data: " + payload + b"\n\n")

    def write(self, text: bytes) -> bool:
        """One chunk of the chunked response, written without waiting."""
        transport = self.transport
        if self.closed.is_set() or transport is None or transport.is_closing():
            self.closed.set()
            return False
        if transport.get_write_buffer_size() > self._limit:
            self._metrics.slow_consumer_closes.inc()
            self.close()
            return False
        # The response is chunked (enable_chunked_encoding before prepare), so each write is a chunk.
        transport.write(b"%x\r\n" % len(text) + text + b"\r\n")
        return True

    def revoked(self, jti: str | None) -> None:
        """The identity's credentials were revoked: end the stream if they were ours."""
        if self.principal is not None and (jti is None or jti == self.principal.token_jti):
            self.close()

    async def recheck(self) -> None:
        """The user's rights changed: reload the principal; a stream whose channel it may no longer
        read ends after an `unsubscribed` event (the handler closes the response properly)."""
        app, principal = self._app, self.principal
        reload = app.get(keys.PRINCIPAL_RELOADER)
        if self.closed.is_set() or principal is None or principal.user_id is None or reload is None:
            return
        try:
            fresh = await reload(app, principal)
        except Exception:
            log.warning("rights not re-checked, stream closed", exc_info=True)
            self.close()
            return
        if fresh is None:
            self.close()
            return
        self.principal = fresh
        try:
            namespace, rest = app[keys.CHANNELS].lookup(self.channel)
            allowed = await namespace.authorize(app[keys.DB], fresh, rest)
        except FrameError:
            allowed = False
        if not allowed and not self.closed.is_set():
            frame = dumpb({"type": "unsubscribed", "channel": self.channel, "reason": const.FORBIDDEN})
            self.write(b"event: unsubscribed\ndata: " + frame + b"\n\n")
            self.closed.set()             # not aborted: the event goes out, then the stream ends

    def close(self) -> None:
        """End the stream now: a reader that cannot keep up gets nothing more, the client reconnects."""
        self.closed.set()
        if self.transport is not None:
            self.transport.abort()


def _payload(frame: bytes) -> bytes:
    """The payload of an unmasked websocket frame built by frames.websocket_text_frame."""
    size = frame[1] & 0x7F
    return frame[2:] if size < 126 else frame[4:] if size == 126 else frame[10:]


def _since(header: str | None) -> tuple[int, str] | None:
    """(offset, epoch) of a Last-Event-ID `<epoch>:<offset>`; None when absent or not ours."""
    if not header:
        return None
    epoch, _, offset = header.strip().rpartition(":")
    if not epoch or not offset.isascii() or not offset.isdigit() or len(offset) > 19:
        return None
    return int(offset), epoch


async def sse(request: web.Request) -> web.StreamResponse:
    """GET /sse?channel=NAME: the channel's events as text/event-stream, recovering from Last-Event-ID."""
    if any(name in request.query for name in URL_TOKEN_PARAMS):
        raise unauthorized("Токен нельзя передавать в адресе запроса.", "token_in_url")
    channel = request.query.get("channel", "")
    if not channel:
        raise field_error("channel", "Обязательное поле.")
    app = request.app
    guard_origin(request)
    principal = request.get(keys.PRINCIPAL)
    namespace, _ = await authorized(app, principal, channel)
    last_id = request.headers.get("Last-Event-ID")
    since = _since(last_id)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    stream = SseStream(request, principal, channel)
    hub = app[keys.HUB]
    identity = own_channel(principal)
    if identity is not None:
        hub.attach_stream(identity, stream)       # revocations and re-checks reach it
    expiry = None
    if principal is not None and principal.token_deadline is not None:
        expiry = asyncio.get_running_loop().call_later(max(0.0, principal.token_deadline - time.time()),
                                                       stream.close)
    try:
        if namespace.stream:
            await hub.join_buffered(stream, channel)
            position = await _position(hub, channel, since)
            await _connected(response)
            if position is not None:
                stream.epoch = position.epoch
            if last_id is not None and (position is None or not position.recovered):
                stream.write(b": recovered false\n\n")
            frames = position.frames if position is not None and position.recovered else []
            hub.catch_up(stream, channel, [websocket_text_frame(frame) for frame in frames],
                         position.top if position is not None else None, stream.epoch or None)
        else:
            await hub.join(stream, channel)
            await _connected(response)
        await _heartbeat(stream, app[keys.CONFIG].ws_heartbeat)
    finally:
        if expiry is not None:
            expiry.cancel()
        if identity is not None:
            hub.detach_stream(identity, stream)
        await hub.leave(stream, channel)
    with contextlib.suppress(ConnectionError, RuntimeError):
        await response.write_eof()
    return response


async def _connected(response: web.StreamResponse) -> None:
    """The first chunk, once the channel is joined: headers go out through aiohttp, later chunks straight."""
    await response.write(b": connected\n\n")


async def _position(hub: Hub, channel: str, since: tuple[int, str] | None) -> Position | None:
    streams = hub.streams
    try:
        if since is None:
            return await streams.read(channel, limit=0)
        return await streams.read(channel, since[0], since[1])
    except REDIS_ERRORS:
        return None


async def _heartbeat(stream: SseStream, period: float) -> None:
    """A comment every WS_HEARTBEAT keeps proxies from closing an idle stream; ends when the client goes."""
    next_beat = time.monotonic() + period
    while not stream.closed.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stream.closed.wait(), min(CLOSED_POLL, max(0.01, next_beat - time.monotonic())))
        if time.monotonic() >= next_beat:
            stream.write(b": heartbeat\n\n")
            next_beat = time.monotonic() + period
        elif stream.transport is None or stream.transport.is_closing():
            stream.closed.set()
