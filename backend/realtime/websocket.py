"""An upgraded /ws socket served after its handler has returned, and its receive loop (SPEC §8).

A handler that serves its socket until it closes keeps every frame above it alive for the socket's
life: the app's middleware, aiohttp's middleware plumbing and its own (≈ 1.4 KB of every idle socket,
bench KB/conn with tracemalloc). aiohttp finishes whatever response a handler returns with
`write_eof()`, from its own request task; `ServedSocket.write_eof` runs the receive loop there
first. The middleware has then already seen the 101 and let go of the request (its access line and
metrics are the upgrade's, not the socket's lifetime).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

from aiohttp import WSCloseCode, WSMsgType, web

from backend import keys
from backend.principal import Principal
from backend.realtime import const
from backend.realtime.connection import Connection
from backend.realtime.frames import error_frame

log = logging.getLogger("backend.realtime")


class ServedSocket(web.WebSocketResponse):
    """A websocket response whose receive loop runs when aiohttp finishes it (write_eof)."""

    # A slot, not the instance dict aiohttp's responses have: a new key could grow that dict.
    __slots__ = ("_serve",)

    def __init__(self, serve: Callable[[ServedSocket], Awaitable[None]], *, max_msg_size: int) -> None:
        # No aiohttp heartbeat and no autoping: the hub's one heartbeat pings (heartbeat.py) and the
        # receive loop answers pings and notes every frame, pongs included.
        super().__init__(max_msg_size=max_msg_size, compress=False, autoping=False)
        self._serve: Callable[[ServedSocket], Awaitable[None]] | None = serve

    def write_eof(self) -> Awaitable[None]:       # type: ignore[override]
        """The first call (aiohttp finishing the response): serve the socket until it closes, then
        close it as aiohttp would have. A plain function returning the loop's coroutine: one frame
        fewer held for the socket's life, and the partial holding the request is let go."""
        serve, self._serve = self._serve, None
        if serve is None or not self.prepared:
            return super().write_eof()
        return serve(self)

    async def finish(self) -> None:
        """What aiohttp's write_eof does once the socket is served: close it unless it is closed."""
        await super().write_eof()


def release_http_parser(request: web.Request) -> None:
    """Once the upgrade is accepted, let go of aiohttp's HTTP parser for this connection.

    It stays on the connection and keeps what it parsed last: the upgrade request, headers and
    bearer included, ≈ 1.6 KB of every idle socket (bench KB/conn, 16.4 → 14.8 KB with a bearer).
    From the 101 on, bytes go to the websocket reader (`_payload_parser`, set by prepare) and
    aiohttp reads the HTTP parser only behind a None check (None is its state after connection_lost).
    A private attribute of aiohttp 3.14, hence the guards: a release that no longer applies costs
    memory, never a socket (tests/realtime/test_served_socket.py pins it).
    """
    protocol = request.protocol
    if getattr(protocol, "_payload_parser", None) is not None and getattr(protocol, "_parser", None) is not None:
        protocol._parser = None


async def serve(request: web.Request, principal: Principal | None, ws: ServedSocket) -> None:
    """Register the socket, join its identity's channel, then answer frames until it closes."""
    app = request.app
    conn = Connection(app, ws, request, principal)
    hub = app[keys.HUB]
    hub.connections.add(conn)
    hub.heartbeat.start(app[keys.CONFIG].ws_heartbeat)
    sockets = app[keys.SOCKETS]
    sockets.add(ws)
    metrics = app[keys.METRICS]
    metrics.ws_connections.inc()
    try:
        if principal is not None:
            await conn.become(principal)
        async for message in ws:
            conn.heard = True
            if message.type == WSMsgType.TEXT:
                await conn.handle_text(message.data)
            elif message.type == WSMsgType.PING:
                with contextlib.suppress(ConnectionError, RuntimeError):      # a peer gone meanwhile
                    await ws.pong(message.data)
            elif message.type == WSMsgType.BINARY:
                await conn.send(error_frame(const.INVALID_FRAME))
    except Exception:
        # Past the upgrade no HTTP answer can be sent (an error page written into the socket's stream
        # reached the client as a broken frame). Log it; close as the protocol says.
        log.exception("websocket handler failed", extra={"request_id": request.get(keys.REQUEST_ID, "-")})
        await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"internal error")
    finally:
        hub.connections.discard(conn)
        sockets.discard(ws)
        metrics.ws_connections.dec()
        await conn.release()
    await ws.finish()
