"""The bus on a Redis Cluster (SPEC §13.1): sharded pub/sub, one connection per shard in use.

A channel's Redis name is one hash tag (`{<prefix>rt:chat:5}`), so it lives on the shard of its
slot together with its stream keys; events are SPUBLISHed there by the publish script. This
instance holds one pub/sub connection (a `ShardLink`) per node that owns a channel it listens
to and SSUBSCRIBEs the channel there; the control channel is one more channel, always listened
to, so it reaches every instance through its shard.

redis-py's own asyncio `ClusterPubSub` reads its per-node connections in turn, each with the
read timeout, so one quiet node delays the events of the others; here every link has its own
reader task. The channel → node map is the cluster client's (CLUSTER SLOTS); a link that gets
MOVED, an SUNSUBSCRIBE it did not ask for (the slot migrated) or keeps failing to connect asks
for the map to be reloaded and every channel to be routed again. A link that loses its node
reconnects with backoff and SSUBSCRIBEs its channels again, so subscribers keep receiving once
the node is back (events published meanwhile are not replayed: clients recover with `since`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import RedisCluster
from redis.exceptions import MovedError

from backend.kv import REDIS_ERRORS
from backend.metrics import Metrics
from backend.realtime.bus import Bus
from backend.realtime.channels import Channels
from backend.realtime.link import BACKOFF_FIRST, BACKOFF_MAX, POLL, STOP_TIMEOUT, PubSubLink, pubsub_client

log = logging.getLogger("backend.realtime.shards")

FAILURES_BEFORE_REMAP = 3     # connection failures in a row after which the node may have lost its slots
MAINTAIN_PERIOD = 5.0         # safety net: route what is unrouted, close links no channel needs


def node_url(url: str, host: str, port: int) -> str:
    """REDIS_URL with another node's address: same scheme (TLS), credentials and options."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}:{port}" if userinfo else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, "", parts.query, ""))


class ShardLink(PubSubLink):
    """One pub/sub connection to one cluster node and the channel names subscribed through it."""

    def __init__(self, node: str, url: str, metrics: Metrics, *, message: Callable[[bytes, bytes], None],
                 subscribed: Callable[[bytes], None], trouble: Callable[[], None]) -> None:
        super().__init__(metrics, f"realtime-shard-{node}")
        self.node = node
        self.names: set[str] = set()
        self.sessions = 0                    # connections made so far (ClusterBus.session)
        self.unconfirmed: set[str] = set()   # names asked for on this connection, not yet confirmed
        self._client = pubsub_client(url)
        self._message, self._subscribed, self._trouble = message, subscribed, trouble
        self._lock = asyncio.Lock()      # SSUBSCRIBE/SUNSUBSCRIBE in the order asked, none while connecting

    async def add(self, name: str) -> None:
        async with self._lock:
            self.names.add(name)
            self.unconfirmed.add(name)
            await self._send("ssubscribe", name)

    async def remove(self, name: str) -> None:
        async with self._lock:
            self.names.discard(name)
            self.unconfirmed.discard(name)
            await self._send("sunsubscribe", name)

    async def _send(self, verb: str, name: str) -> None:
        pubsub = self._pubsub
        if pubsub is None or not self.connected:
            return              # _session() subscribes self.names when it connects
        with contextlib.suppress(*REDIS_ERRORS):    # the reader sees the loss and reconnects
            await getattr(pubsub, verb)(name)

    async def stop(self) -> None:
        await super().stop()
        await self._client.aclose()

    def _failed(self, error: Exception, failures: int) -> None:
        # MOVED: a channel is not this node's (the slot moved); several failed connects in a row:
        # the node may be gone for good (a replica took its slots). Either way the bus reloads
        # the slot map and routes every channel again.
        if isinstance(error, MovedError) or failures == FAILURES_BEFORE_REMAP:
            self._trouble()

    async def _session(self) -> None:
        pubsub = self._client.pubsub()
        self._pubsub = pubsub
        await pubsub.ping()                          # opens the connection; raises while the node is down
        async with self._lock:
            names = tuple(self.names)
            self.sessions += 1
            self.unconfirmed = set(names)
            self.connected = True
            # One SSUBSCRIBE per channel: a node serves many slots, and one SSUBSCRIBE of channels
            # of different slots is refused with CROSSSLOT.
            for name in names:
                await pubsub.ssubscribe(name)
        while not self._stopping:
            message = await pubsub.get_message(timeout=POLL)
            if message is None:
                continue
            kind = message["type"]
            if kind == "smessage":
                self._message(message["channel"], message["data"])
            elif kind == "ssubscribe":
                self.unconfirmed.discard(_text(message["channel"]))
                self._subscribed(message["channel"])
            elif kind == "sunsubscribe" and _text(message["channel"]) in self.names:
                # Not asked for: the server dropped the channel because its slot left this node.
                # Nothing of it arrives here any more: it is no longer vouched for (session()).
                self.unconfirmed.add(_text(message["channel"]))
                self._trouble()


class ClusterBus(Bus):
    """The bus over sharded pub/sub: the same interface, one ShardLink per node in use."""

    def __init__(self, redis: RedisCluster, url: str, prefix: str, metrics: Metrics, channels: Channels, *,
                 history_size: int, history_ttl: float) -> None:
        super().__init__(redis, None, prefix, metrics, channels, history_size=history_size,
                         history_ttl=history_ttl, cluster=True)
        self._cluster = redis
        self._url = url
        self._links: dict[str, ShardLink] = {}        # node name (host:port) → its link
        self._owner: dict[str, str] = {}              # channel → node whose link subscribed it
        self._routing = asyncio.Lock()
        self._remap = asyncio.Event()                 # set: reload the slot map, route everything again

    def links(self) -> dict[str, frozenset[str]]:
        """Node → channels subscribed through its link (for tests and operators)."""
        return {node: frozenset(self.channel_of(name) for name in link.names) for node, link in self._links.items()}

    async def _command(self, verb: str, channel: str) -> None:
        async with self._routing:
            if verb == "subscribe":
                await self._route(channel)
            else:
                await self._unroute(channel)

    async def _route(self, channel: str) -> None:
        """Subscribe `channel` on the link of the node that owns its slot (moving it if needed)."""
        name = self.redis_channel(channel)
        try:
            await self._cluster.initialize()               # a no-op once the slot map is known
            node = self._cluster.get_node_from_key(name)
        except REDIS_ERRORS:
            self._remap.set()                              # no map yet (cluster unreachable): later
            return
        if node is None:
            return
        if self._owner.get(channel) == node.name:
            return
        await self._unroute(channel)
        link = self._links.get(node.name)
        if link is None:
            link = self._links[node.name] = ShardLink(
                node.name, node_url(self._url, node.host, node.port), self._metrics,
                message=self._on_message, subscribed=self._on_subscribed, trouble=self._remap.set)
            link.start()
        self._owner[channel] = node.name
        await link.add(name)

    async def _unroute(self, channel: str) -> None:
        node = self._owner.pop(channel, None)
        link = self._links.get(node) if node is not None else None
        if link is not None:
            await link.remove(self.redis_channel(channel))

    def session(self, channel: str) -> object | None:
        """Bus.session per shard: the link that delivers `channel` and its connection count, while
        that link is connected and its SSUBSCRIBE confirmed. A reconnect of that link, or the
        channel moved to another node (a slot migration, a failover), changes the token."""
        node = self._owner.get(channel)
        link = self._links.get(node) if node is not None else None
        if link is None or not link.connected or channel not in self._channels or channel in self._pending \
                or self.redis_channel(channel) in link.unconfirmed:
            return None
        return link, link.sessions

    def _on_message(self, name: bytes, data: bytes) -> None:
        self.received(self.channel_of(name), data)

    def _on_subscribed(self, name: bytes) -> None:
        self._confirm(self.channel_of(name))

    def start(self) -> None:
        self._remap.set()                  # routes the control channel (and anything listened before)
        self._task = asyncio.create_task(self._maintain(), name="realtime-bus-shards")

    async def _maintain(self) -> None:
        """Route every channel, again after any trouble, and close links nothing uses any more."""
        backoff = BACKOFF_FIRST
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._remap.wait(), MAINTAIN_PERIOD)
            remap = self._remap.is_set()
            self._remap.clear()
            try:
                if remap:
                    await self._cluster.initialize()
                    await self._cluster.nodes_manager.initialize()     # CLUSTER SLOTS again
                async with self._routing:
                    for channel in tuple(self._channels):
                        await self._route(channel)
                    for node, link in tuple(self._links.items()):
                        if not link.names:
                            del self._links[node]
                            await link.stop()
                backoff = BACKOFF_FIRST
            except REDIS_ERRORS as exc:
                log.warning("Redis Cluster slot map not loaded, retrying", extra={"error": str(exc)})
                self._remap.set()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)

    async def stop(self) -> None:
        self._stopping = True
        task = self._task
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=STOP_TIMEOUT)
        links, self._links = tuple(self._links.values()), {}
        await asyncio.gather(*(link.stop() for link in links), return_exceptions=True)
        for channel in tuple(self._pending):
            self._confirm(channel)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

