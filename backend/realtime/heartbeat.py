"""The server heartbeat of /ws (SPEC §8.4: a ping every WS_HEARTBEAT, dead peers dropped), one timer
for all of an instance's sockets.

aiohttp's own heartbeat keeps a timer per socket, re-armed on every frame received, and a second one
while a ping waits for its pong: ≈ 0.5 KB of every idle socket (bench KB/conn) and a callback per
received chunk. Here one timer ticks every WS_HEARTBEAT / 2 over the hub's sockets, each of which
only carries two flags. A socket not heard from during a tick is pinged; one still silent a tick
after its ping is dropped — aiohttp's bounds: a ping after at most WS_HEARTBEAT of silence, half of
it to answer (a dead peer goes within 1.5 × WS_HEARTBEAT of its last frame).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from typing import Protocol

log = logging.getLogger("backend.realtime")

PING_FRAME = b"\x89\x00"        # FIN + opcode 9, an empty unmasked payload (RFC 6455 §5.5.2)


class Beating(Protocol):
    """A socket the heartbeat watches (Connection)."""

    heard: bool                 # a frame came since the last tick (set by the receive loop; True at first)
    pinged: bool                # pinged at the last tick and silent since
    closing: bool
    transport: asyncio.BaseTransport | None

    def push(self, frame: bytes) -> bool:
        """Write a prebuilt frame without waiting."""
        ...


class Heartbeat:
    """One timer over `sockets` (the hub's set, shared, not copied): running while any is open."""

    def __init__(self, sockets: Collection[Beating]) -> None:
        self._sockets = sockets
        self._timer: asyncio.TimerHandle | None = None
        self._period = 0.0

    def start(self, interval: float) -> None:
        """Tick every `interval` / 2 from now on, unless already ticking (called at each upgrade);
        WS_HEARTBEAT=0 turns the heartbeat off."""
        if self._timer is None and interval > 0:
            self._period = interval / 2
            self._timer = asyncio.get_running_loop().call_later(self._period, self._tick)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self) -> None:
        self._timer = None
        if not self._sockets:
            return                  # the next upgrade starts it again
        try:
            beat(self._sockets)
        except Exception:
            log.exception("heartbeat tick failed")       # the next tick still comes
        self._timer = asyncio.get_running_loop().call_later(self._period, self._tick)


def beat(sockets: Collection[Beating]) -> None:
    """One tick: forget who was heard, ping who was not, drop who did not answer the last ping."""
    for conn in tuple(sockets):
        if conn.heard:
            conn.heard = conn.pinged = False
        elif conn.pinged:
            drop(conn)
        else:
            conn.pinged = True
            conn.push(PING_FRAME)


def drop(conn: Beating) -> None:
    """A peer that did not answer its ping: the connection is aborted without a close handshake (it
    would wait for a dead peer); the receive loop then ends and releases the socket."""
    if conn.closing:
        return                  # closing already: close_soon's own abort comes after CLOSE_GRACE
    conn.closing = True
    if conn.transport is not None:
        conn.transport.abort()
