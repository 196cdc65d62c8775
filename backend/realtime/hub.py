"""The hub: local subscribers per channel; it listens to Redis only while someone here does."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from backend.metrics import Metrics
from backend.realtime.bus import Bus
from backend.realtime.const import REVOKED_EVENT
from backend.realtime.frames import event_frame, websocket_text_frame
from backend.realtime.snapshots import Snapshots

if TYPE_CHECKING:
    from backend.realtime.connection import Connection

class Hub:
    """Channels → local connections; builds each event's frame once for all of them."""

    def __init__(self, bus: Bus, metrics: Metrics) -> None:
        self._bus = bus
        self._metrics = metrics
        self._members: dict[str, set[Connection]] = {}
        self.connections: set[Connection] = set()
        self.snapshots = Snapshots()
        bus.deliver = self.deliver
        bus.on_control = self.control

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
        frame = websocket_text_frame(payload)
        delivered = 0
        for conn in tuple(members):
            if conn.push(frame):
                delivered += 1
        self._metrics.events_delivered.inc(delivered)
        if delivered < len(members):
            self._metrics.events_dropped.inc(len(members) - delivered)

    def control(self, message: dict[str, Any]) -> None:
        """An order from the control channel about the sockets of one identity (user:{id} / app:{id}).

        `revoke`: every socket of the identity is told (`session.revoked` on its own channel, so a
        client knows why) and those holding the revoked credential — or all, without a jti — close.
        """
        target, action = message["target"], message["action"]
        members = self._members.get(target)
        if action != "revoke" or not members:
            return
        jti = message.get("jti")
        frame = websocket_text_frame(event_frame(target, REVOKED_EVENT, {"jti": jti}))
        for conn in tuple(members):
            conn.push(frame)
            conn.revoked(jti)
