"""The hub: local subscribers per channel; it listens to Redis only while someone here does."""

from __future__ import annotations

from typing import TYPE_CHECKING

from backend.jsonutil import loads
from backend.ops.metrics import Metrics
from backend.realtime.bus import Bus
from backend.realtime.channels import IDENTITY_PREFIXES
from backend.realtime.const import REVOKED_EVENT
from backend.realtime.frames import websocket_text_frame
from backend.realtime.snapshots import Snapshots

if TYPE_CHECKING:
    from backend.realtime.connection import Connection

# Cheap pre-filter on the one encoding of every event (orjson writes no spaces).
_REVOKED_MARK = b'"event":"' + REVOKED_EVENT.encode() + b'"'


class Hub:
    """Channels → local connections; builds each event's frame once for all of them."""

    def __init__(self, bus: Bus, metrics: Metrics) -> None:
        self._bus = bus
        self._metrics = metrics
        self._members: dict[str, set[Connection]] = {}
        self.connections: set[Connection] = set()
        self.snapshots = Snapshots()
        bus.deliver = self.deliver

    def local_count(self, channel: str) -> int:
        """How many sockets of this instance are subscribed to `channel`."""
        return len(self._members.get(channel, ()))

    async def join(self, conn: Connection, channel: str) -> None:
        """Add `conn` to `channel`; returns once this instance receives the channel from Redis."""
        # Membership changes synchronously, so concurrent joins and leaves need no lock; the bus
        # keeps SUBSCRIBE/UNSUBSCRIBE in call order and makes a repeated listen() cheap.
        self._members.setdefault(channel, set()).add(conn)
        self._metrics.ws_subscriptions.inc()
        await self._bus.listen(channel)

    async def leave(self, conn: Connection, channel: str) -> None:
        """Remove `conn` from `channel`; the last one out unsubscribes the bus."""
        members = self._members.get(channel)
        if members is None or conn not in members:
            return
        members.discard(conn)
        self._metrics.ws_subscriptions.dec()
        if not members:
            del self._members[channel]
            await self._bus.unlisten(channel)

    def deliver(self, channel: str, payload: bytes) -> None:
        """Write one event to every local subscriber; never waits on any of them."""
        members = self._members.get(channel)
        if not members:
            return
        if channel.startswith(IDENTITY_PREFIXES) and _REVOKED_MARK in payload:
            self._revoke(members, payload)
        frame = websocket_text_frame(payload)
        delivered = 0
        for conn in tuple(members):
            if conn.push(frame):
                delivered += 1
        self._metrics.events_delivered.inc(delivered)
        if delivered < len(members):
            self._metrics.events_dropped.inc(len(members) - delivered)

    @staticmethod
    def _revoke(members: set[Connection], payload: bytes) -> None:
        event = loads(payload)
        if event.get("event") != REVOKED_EVENT:
            return
        jti = (event.get("data") or {}).get("jti")
        for conn in tuple(members):
            conn.revoked(jti)
