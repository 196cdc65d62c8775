"""The hub: local subscribers per channel; it listens to Redis only while someone here does."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from backend.metrics import Metrics
from backend.principal import Principal
from backend.realtime.bus import Bus
from backend.realtime.const import REVOKED_EVENT
from backend.realtime.deadlines import Deadlines
from backend.realtime.frames import event_frame, websocket_text_frame
from backend.realtime.heartbeat import Heartbeat
from backend.realtime.names import ROLE_TARGET
from backend.realtime.presence import Presence
from backend.realtime.snapshots import Snapshots
from backend.realtime.streams import split_live
from backend.realtime.tips import Tips

log = logging.getLogger("backend.realtime")


class Subscriber(Protocol):
    """What the hub writes to: a websocket (Connection) or an SSE stream (sse.SseStream)."""

    principal: Principal | None

    def push(self, frame: bytes) -> bool:
        """Write one prebuilt websocket frame without waiting; False when it was not written."""
        ...

    def revoked(self, jti: str | None) -> None:
        """The identity's credentials were revoked (all of them when `jti` is None)."""
        ...

    async def recheck(self) -> None:
        """The identity's rights changed: reload the principal, drop what it may no longer hear."""
        ...


Live = tuple[int | None, bytes | None, bytes]       # (offset, epoch, websocket frame) of a live event


@dataclass(slots=True)
class _CatchingUp:
    """A subscriber that joined the live stream and is being sent what it missed (SPEC §12.2)."""

    buffer: list[Live] | None = field(default_factory=list)   # live events held until its reply is out
    after: int = 0                    # offsets up to this one were sent from history or precede it
    epoch: bytes | None = None


class Hub:
    """Channels → local subscribers; builds each event's frame once for all of them."""

    def __init__(self, bus: Bus, metrics: Metrics, presence: Presence) -> None:
        self._bus = bus
        self._metrics = metrics
        self.streams = bus.streams
        self.presence = presence
        self._members: dict[str, set[Subscriber]] = {}
        # Subscribers between joining and being caught up; they leave this for _members at the first
        # live event past what they were sent. Kept apart so the fan-out loop stays one push per member.
        self._catching: dict[str, dict[Subscriber, _CatchingUp]] = {}
        self.connections: set[Any] = set()
        # SSE streams by identity (user:{id} / app:{id}): a stream joins only its one channel, so
        # control orders find it here; websockets are found by the identity channel they all join.
        self._streams: dict[str, set[Subscriber]] = {}
        # Subscribers whose rights are being re-checked → True when another order came meanwhile.
        self._rechecking: dict[Subscriber, bool] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.snapshots = Snapshots()
        self.positions = Snapshots()      # stream positions (epoch, top), shared the same way
        self.tips = Tips(bus)             # …and followed from the live events once one read anchored them
        self.deadlines = Deadlines()      # sockets' token expiries, one timer per instant
        self.heartbeat = Heartbeat(self.connections)     # one ping timer for every websocket
        bus.deliver = self.deliver
        bus.on_control = self.control

    def local_count(self, channel: str) -> int:
        """How many subscribers of this instance are subscribed to `channel`."""
        return len(self._members.get(channel, ())) + len(self._catching.get(channel, ()))

    def _has(self, conn: Subscriber, channel: str) -> bool:
        return conn in self._members.get(channel, ()) or conn in self._catching.get(channel, ())

    async def join(self, conn: Subscriber, channel: str) -> None:
        """Add `conn` to `channel`; returns once this instance receives the channel from Redis."""
        # Membership changes synchronously, so concurrent joins and leaves need no lock; the bus
        # keeps SUBSCRIBE/UNSUBSCRIBE in call order and makes a repeated listen() cheap.
        if not self._has(conn, channel):
            self._metrics.ws_subscriptions.inc()
        self._members.setdefault(channel, set()).add(conn)
        await self._bus.listen(channel)

    async def join_buffered(self, conn: Subscriber, channel: str) -> None:
        """Join the live stream first, holding its events for `conn` until `catch_up` (SPEC §12.2).

        A subscriber already in the channel (a resubscribe with `since`) is held again too.
        """
        if not self._has(conn, channel):
            self._metrics.ws_subscriptions.inc()
        members = self._members.get(channel)
        if members is not None:
            members.discard(conn)
        self._catching.setdefault(channel, {})[conn] = _CatchingUp()
        await self._bus.listen(channel)

    def catch_up(self, conn: Subscriber, channel: str, frames: list[bytes], after: int | None,
                 epoch: str | None) -> None:
        """Write `frames` (the reply, then the missed events), then the held live events past `after`.

        Synchronous: nothing can be delivered between the history and the held events. With
        `after` None (no offsets known: Redis lost) every held event goes out as it came.
        """
        state = self._catching.get(channel, {}).get(conn)
        if state is None:
            return                    # it left while its history was read
        for frame in frames:
            conn.push(frame)
        held, state.buffer = state.buffer or [], None
        if after is None:
            self._promote(conn, channel)
            for _, _, frame in held:
                conn.push(frame)
            return
        state.after, state.epoch = after, (epoch or "").encode()
        for offset, event_epoch, frame in held:
            self._offer(conn, channel, state, offset, event_epoch, frame)

    def _offer(self, conn: Subscriber, channel: str, state: _CatchingUp, offset: int | None,
               epoch: bytes | None, frame: bytes) -> bool:
        """A live event for a subscriber being caught up: hold it, drop it as already sent, or send it
        (True when written now)."""
        if state.buffer is not None:
            state.buffer.append((offset, epoch, frame))
            return False
        if offset is None:
            return conn.push(frame)   # ephemeral: never in the history, so never a duplicate
        # A pub/sub message can be read after the history that already holds it: the read and the
        # listener use different connections. Offsets settle it; a new epoch means a new stream.
        if epoch == state.epoch and offset <= state.after:
            return False
        self._promote(conn, channel)
        return conn.push(frame)

    def _promote(self, conn: Subscriber, channel: str) -> None:
        catching = self._catching.get(channel)
        if catching is not None and catching.pop(conn, None) is not None:
            if not catching:
                del self._catching[channel]
            self._members.setdefault(channel, set()).add(conn)

    async def leave(self, conn: Subscriber, channel: str) -> None:
        """Remove `conn` from `channel`; the last one out unsubscribes the bus."""
        members = self._members.get(channel)
        catching = self._catching.get(channel)
        found = False
        if members is not None and conn in members:
            members.discard(conn)
            found = True
            if not members:
                del self._members[channel]
        if catching is not None and catching.pop(conn, None) is not None:
            found = True
            if not catching:
                del self._catching[channel]
        if not found:
            return
        self._metrics.ws_subscriptions.dec()
        if channel not in self._members and channel not in self._catching:
            self.tips.drop(channel)
            await self._bus.unlisten(channel)

    def deliver(self, channel: str, payload: bytes) -> None:
        """Write one event to every local subscriber; never waits on any of them."""
        members = self._members.get(channel)
        catching = self._catching.get(channel)
        if not members and not catching:
            return
        offset, epoch, body = split_live(payload)
        self.tips.event(channel, offset, epoch)
        frame = websocket_text_frame(body)
        delivered = 0
        if members:
            for conn in tuple(members):
                if conn.push(frame):
                    delivered += 1
            if delivered < len(members):
                self._metrics.events_dropped.inc(len(members) - delivered)
        if catching:
            for conn, state in tuple(catching.items()):
                if self._offer(conn, channel, state, offset, epoch, frame):
                    delivered += 1
        self._metrics.events_delivered.inc(delivered)

    def subscribers(self, channel: str) -> tuple[Subscriber, ...]:
        """Every local subscriber of `channel`, caught up or not."""
        return (*self._members.get(channel, ()), *self._catching.get(channel, ()))

    def attach_stream(self, identity: str, stream: Subscriber) -> None:
        """Let control orders about `identity` reach an SSE stream it authenticated."""
        self._streams.setdefault(identity, set()).add(stream)

    def detach_stream(self, identity: str, stream: Subscriber) -> None:
        streams = self._streams.get(identity)
        if streams is not None:
            streams.discard(stream)
            if not streams:
                del self._streams[identity]

    def _holders(self, target: str) -> tuple[Subscriber, ...]:
        """The local sockets and streams of an identity (user:{id}, app:{id}), or of every user of a
        role (role:{id}: judged by each one's current principal)."""
        namespace, _, rest = target.partition(":")
        if namespace == ROLE_TARGET:
            role_id = int(rest)
            candidates: Any = (*self.connections, *(s for streams in self._streams.values() for s in streams))
            return tuple(conn for conn in candidates
                         if conn.principal is not None and conn.principal.role_id == role_id)
        return tuple(dict.fromkeys((*self.subscribers(target), *self._streams.get(target, ()))))

    def control(self, message: dict[str, Any]) -> None:
        """An order from the control channel about the sockets of one identity (user:{id} / app:{id})
        or of a role's users (role:{id}).

        `revoke`: every socket of the identity is told (`session.revoked` on its own channel, so a
        client knows why) and those holding the revoked credential — or all, without a jti — close,
        SSE streams included. `recheck`: their rights changed; each one reloads its principal and
        drops the subscriptions it may no longer hold (SPEC §8.1).
        """
        target, action = message["target"], message["action"]
        if action == "revoke":
            jti = message.get("jti")
            frame = websocket_text_frame(event_frame(target, REVOKED_EVENT, {"jti": jti}))
            for conn in self.subscribers(target):
                conn.push(frame)
            for conn in self._holders(target):
                conn.revoked(jti)
        elif action == "recheck":
            for conn in self._holders(target):
                self._recheck(conn)

    def _recheck(self, conn: Subscriber) -> None:
        """Run conn.recheck() in a task, one at a time per subscriber: an order that comes while one
        runs makes it run once more, so the last principal loaded is never older than the last order."""
        if conn in self._rechecking:
            self._rechecking[conn] = True
            return
        self._rechecking[conn] = False
        task = asyncio.get_running_loop().create_task(self._rechecks(conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _rechecks(self, conn: Subscriber) -> None:
        try:
            while True:
                self._rechecking[conn] = False
                try:
                    await conn.recheck()
                except Exception:
                    log.exception("subscription re-check failed")
                if not self._rechecking.get(conn):
                    return
        finally:
            self._rechecking.pop(conn, None)
