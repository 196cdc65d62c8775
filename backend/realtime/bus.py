"""The event bus: Redis pub/sub between instances, one pub/sub connection per instance.

An instance subscribes a Redis channel only while it has a local subscriber for it (the hub
calls listen/unlisten). A lost Redis is retried with backoff and every channel is subscribed
again, so live websockets keep receiving once Redis returns (SPEC §8.4). On a Redis Cluster the
subclass in shards.py keeps the same interface over sharded pub/sub (SPEC §13.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from backend.jsonutil import dumps, loads
from backend.kv import KV, REDIS_ERRORS
from backend.metrics import Metrics
from backend.realtime.channels import Channels
from backend.realtime.const import IDEMPOTENCY_TTL
from backend.realtime.frames import event_frame
from backend.realtime.link import POLL, PubSubLink
from backend.realtime.streams import Call, Published, Streams

log = logging.getLogger("backend.realtime.bus")

Deliver = Callable[[str, bytes], None]
Control = Callable[[dict[str, Any]], None]
# The control channel: instance-to-instance orders about sockets (revoke an identity's credentials),
# never mixed with events. No namespace can be named "!control", so no client can subscribe to it.
CONTROL = "!control"
CONFIRM_TIMEOUT = 2.0      # how long a first subscriber waits for Redis to confirm SUBSCRIBE


@dataclass
class Outbox:
    """Events collected inside a transaction, published by `Bus.deferred` after it commits."""

    events: list[tuple[str, str, Any]] = field(default_factory=list)
    keys: list[str | None] = field(default_factory=list)     # each event's idempotency key, if any

    def add(self, channel: str, event: str, data: Any, key: str | None = None) -> None:
        """Queue one event; nothing leaves before the surrounding block succeeds. With `key` it is
        published at most once per channel and key (Bus.publish_event), so a retry can re-send an
        event its first attempt may never have published without sending it twice."""
        self.events.append((channel, event, data))
        self.keys.append(key)


__all__ = ["CONTROL", "Bus", "Outbox"]


class Bus(PubSubLink):
    """Publish events to every instance; receive the channels this instance listens to.

    As a PubSubLink it is the one SUBSCRIBE connection of a plain Redis; ClusterBus (shards.py)
    keeps one link per shard instead.
    """

    def __init__(self, redis: KV, listener: Redis | None, prefix: str, metrics: Metrics, channels: Channels, *,
                 history_size: int, history_ttl: float, cluster: bool = False) -> None:
        super().__init__(metrics, "realtime-bus")
        self._redis = redis            # the app's shared client: PUBLISH goes through its pool
        self._listener = listener      # one connection, used only for SUBSCRIBE and reading (None: shards.py)
        self._prefix = prefix + "rt:"
        self._registry = channels      # which events of which channel are kept (Namespace.keeps)
        self.streams = Streams(redis, self.redis_channel, history_size=history_size, history_ttl=history_ttl,
                               cluster=cluster)
        # SPUBLISH on a cluster: only the channel's shard carries it (PUBLISH would reach every node).
        self._send = redis.spublish if cluster else redis.publish
        self._channels: set[str] = {CONTROL}          # every instance always hears the control channel
        self._pending: dict[str, list[asyncio.Future[None]]] = {}
        self._commands = asyncio.Lock()    # SUBSCRIBE/UNSUBSCRIBE reach Redis in the order asked
        self._sessions = 0                 # pub/sub connections made so far (see `session`)
        self._unconfirmed: set[str] = set()   # resubscribed by this connection, not yet confirmed
        self.deliver: Deliver = lambda channel, payload: None
        self.on_control: Control = lambda message: None

    def redis_channel(self, channel: str) -> str:
        """The one place that maps a channel to its Redis name (a shard map would live here).

        The whole name is a hash tag, and a channel's stream keys extend it (streams.py): on a
        Redis Cluster the channel, its history and its sharded pub/sub share one slot.
        """
        return "{" + self._prefix + channel + "}"

    def session(self, channel: str) -> object | None:
        """A token of the pub/sub connection that delivers `channel`, or None while it may not (not
        subscribed, not yet confirmed, connection down). Two equal tokens: no event of the channel
        was missed between them (the hub's stream tips rely on it, tips.py)."""
        if not self.connected or channel not in self._channels or channel in self._pending \
                or channel in self._unconfirmed:
            return None
        return self._sessions

    @property
    def channels(self) -> frozenset[str]:
        """Channels this instance currently receives from Redis."""
        return frozenset(self._channels)

    async def publish(self, channel: str, event: str, data: Any, idempotency_key: str | None = None) -> int:
        """Send an event to every instance; returns how many instances listen to `channel`.

        Domains call this after their transaction committed. A lost Redis does not fail the
        caller's request (Postgres is the truth; clients resync from REST): the event is dropped.
        """
        try:
            return (await self.publish_event(channel, event, data, idempotency_key=idempotency_key)).receivers
        except REDIS_ERRORS:
            log.warning("event not published, Redis unavailable", extra={"channel": channel, "event": event})
            self._metrics.events_publish_failed.inc()
            return 0

    async def publish_event(self, channel: str, event: str, data: Any, *, idempotency_key: str | None = None,
                            remember: str = "") -> Published:
        """Publish in one Redis round trip: offset, history and PUBLISH together (SPEC §12.1).

        With `idempotency_key`, the same script checks and records it (bound to channel and event),
        so a repeat publishes nothing and gets the first publish's offset and `remember`ed result.
        Raises Redis errors.
        """
        call = self._call(channel, event, data, idempotency_key, remember)
        if call.idempotency is None and not call.stream:
            receivers = await self._send(self.redis_channel(channel), call.frame)
            published = Published(0, "", int(receivers))
        else:
            published = await self.streams.publish(channel, call.frame, stream=call.stream,
                                                   idempotency=call.idempotency)
        if published.first:
            self._metrics.events_published.inc()
        return published

    async def publish_outbox(self, outbox: Outbox) -> None:
        """Publish an outbox's events in one pipeline, each channel's in the order queued; like
        `publish`, a lost Redis drops them (a warning and `events_publish_failed` each)."""
        calls = [self._call(channel, event, data, key)
                 for (channel, event, data), key in zip(outbox.events, outbox.keys, strict=True)]
        results: list[Published | Exception]
        try:
            results = await self.streams.publish_many(calls)
        except REDIS_ERRORS as exc:
            results = [exc] * len(calls)
        for (channel, event, _), result in zip(outbox.events, results, strict=True):
            if isinstance(result, Exception):
                log.warning("event not published, Redis unavailable", extra={"channel": channel, "event": event})
                self._metrics.events_publish_failed.inc()
            elif result.first:
                self._metrics.events_published.inc()

    def _call(self, channel: str, event: str, data: Any, idempotency_key: str | None, remember: str = "") -> Call:
        """The publish script's run for one event: kept in the stream as its namespace says."""
        namespace = self._registry.find(channel)
        stream = namespace.keeps(event) if namespace is not None else False
        record = None
        if idempotency_key is not None:
            record = (self.streams.idempotency_key(channel, event, idempotency_key), IDEMPOTENCY_TTL, remember)
        return Call(channel, event_frame(channel, event, data), stream, record)

    async def publish_control(self, target: str, action: str, **data: Any) -> None:
        """Order every instance to act on the sockets of `target` (an identity channel's name).

        Sent on the control channel, never on the target's event channel, so a client can neither
        forge one nor see it; a lost Redis drops it like an event (the next request is refused anyway).
        """
        payload = dumps({"target": target, "action": action, **data})
        try:
            await self._send(self.redis_channel(CONTROL), payload)
        except REDIS_ERRORS:
            log.warning("control message not published, Redis unavailable",
                        extra={"target": target, "action": action})
            self._metrics.events_publish_failed.inc()

    @contextlib.asynccontextmanager
    async def deferred(self) -> AsyncIterator[Outbox]:
        """Collect events and publish them only if the block succeeds.

        Enter it *outside* the transaction (`async with bus.deferred() as out, tx(db) as conn:`)
        so the commit happens before anything is published (SPEC §1.4).
        """
        outbox = Outbox()
        yield outbox
        if len(outbox.events) == 1:
            (channel, event, data), key = outbox.events[0], outbox.keys[0]
            await self.publish(channel, event, data, key)
        elif outbox.events:
            # A booking queues 4-5 events: one round trip instead of one each (the script per
            # event, ephemeral ones included, so one pipeline holds one kind of command).
            await self.publish_outbox(outbox)

    async def listen(self, channel: str) -> None:
        """Receive `channel` from Redis; returns once Redis confirmed it (or it is retried later)."""
        if channel in self._channels and channel not in self._pending:
            return
        self._channels.add(channel)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(channel, []).append(waiter)
        if len(self._pending[channel]) == 1:
            await self._command("subscribe", channel)
        # A subscriber must not miss an event published right after its `subscribed` reply, so
        # wait for Redis's confirmation; while Redis is down the reconnect loop subscribes later.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(waiter), CONFIRM_TIMEOUT)

    async def unlisten(self, channel: str) -> None:
        """Stop receiving `channel` (its last local subscriber left)."""
        if channel not in self._channels:
            return
        self._channels.discard(channel)
        self._confirm(channel)
        await self._command("unsubscribe", channel)

    async def _command(self, verb: str, channel: str) -> None:
        async with self._commands:
            pubsub = self._pubsub
            if pubsub is None or not self.connected:
                return          # _session() subscribes self._channels when it connects
            with contextlib.suppress(*REDIS_ERRORS):   # the reader sees the loss and reconnects
                await getattr(pubsub, verb)(self.redis_channel(channel))

    def _confirm(self, channel: str) -> None:
        self._unconfirmed.discard(channel)
        for waiter in self._pending.pop(channel, ()):
            if not waiter.done():
                waiter.set_result(None)

    async def stop(self) -> None:
        """Stop listening, close the pub/sub connection and release anyone awaiting a SUBSCRIBE."""
        await super().stop()
        for channel in tuple(self._pending):
            self._confirm(channel)

    def channel_of(self, name: bytes | str) -> str:
        """The channel of a Redis name made by redis_channel ("{" + prefix + channel + "}")."""
        return (name.decode() if isinstance(name, bytes) else name)[len(self._prefix) + 1:-1]

    def received(self, channel: str, data: bytes) -> None:
        """One message read from Redis: to the hub, or to on_control for the control channel."""
        if channel not in self._channels:
            return
        try:
            if channel == CONTROL:
                self.on_control(loads(data))
            else:
                self.deliver(channel, data)
        except Exception:
            # One bad payload (a malformed revocation, a bug in a push) must not end the
            # instance's only listener: every later event of every channel would be lost.
            log.exception("event delivery failed", extra={"channel": channel})

    async def _session(self) -> None:
        """One pub/sub connection's life: subscribe everything, then read until it fails."""
        assert self._listener is not None
        pubsub = self._listener.pubsub()
        self._pubsub = pubsub
        await pubsub.ping()                          # opens the connection; raises while Redis is down
        async with self._commands:
            channels = tuple(self._channels)         # later listen() calls subscribe by themselves
            self._sessions += 1
            self._unconfirmed = set(channels)
            self.connected = True
            if channels:
                await pubsub.subscribe(*(self.redis_channel(c) for c in channels))
        prefix_len = len(self._prefix) + 1          # names are "{" + prefix + channel + "}"
        while not self._stopping:
            message = await pubsub.get_message(timeout=POLL)
            if message is None:
                continue
            kind = message["type"]
            if kind not in ("message", "subscribe"):
                continue
            name = message["channel"]
            channel = (name.decode() if isinstance(name, bytes) else name)[prefix_len:-1]
            if kind == "subscribe":
                self._confirm(channel)
            else:
                self.received(channel, message["data"])
