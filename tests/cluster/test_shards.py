"""Sharded pub/sub on a real 3-master cluster (SPEC §13.1): each channel lives on its shard only,
one connection per shard in use, and subscribers outlive a restart of their node."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient
from redis.asyncio import Redis
from redis.crc import key_slot

from backend import keys
from backend.realtime.bus import CONTROL
from backend.realtime.shards import ClusterBus
from tests.cluster.valkey_cluster import ValkeyCluster
from tests.realtime.conftest import event_of, metric, subscribe
from tests.support import eventually


def bus_of(client: TestClient) -> ClusterBus:
    bus = client.app[keys.BUS]
    assert isinstance(bus, ClusterBus)
    return bus


def channel_on(client: TestClient, cluster: ValkeyCluster, index: int, stem: str = "news:s") -> str:
    """A `news` channel whose slot node `index` serves."""
    bus = bus_of(client)
    for n in range(10_000):
        channel = f"{stem}{n}"
        if cluster.owner(key_slot(bus.redis_channel(channel).encode())) is cluster.nodes[index]:
            return channel
    raise AssertionError("no channel found for that node")


async def shard_numsub(nodes: list[Redis], name: str) -> list[int]:
    """PUBSUB SHARDNUMSUB of `name` on every node, in node order."""
    counts = []
    for node in nodes:
        reply: Any = await node.execute_command("PUBSUB", "SHARDNUMSUB", name)
        counts.append(int(reply[1]))
    return counts


async def test_each_channel_is_subscribed_and_published_on_its_shard_only(rt_client, nodes, valkey_cluster) -> None:
    a, b = await rt_client(), await rt_client()
    channels = [channel_on(a, valkey_cluster, index) for index in range(3)]
    async with a.ws_connect("/ws") as on_a, b.ws_connect("/ws") as on_b:
        for number, channel in enumerate(channels):
            await subscribe(on_a, channel, number)
            await subscribe(on_b, channel, number)
        for index, channel in enumerate(channels):
            expected = [0, 0, 0]
            expected[index] = 2                       # both instances, on the owning node only
            assert await shard_numsub(nodes, bus_of(a).redis_channel(channel)) == expected
            # Each instance holds one link per node in use and subscribes the channel through its owner's.
            owner = f"127.0.0.1:{valkey_cluster.nodes[index].port}"
            assert channel in bus_of(a).links()[owner] and channel in bus_of(b).links()[owner]
        assert len(bus_of(a).links()) == 3
        for number, channel in enumerate(channels):
            publisher = (a, b)[number % 2]
            assert await publisher.app[keys.BUS].publish(channel, "story", {"n": number}) == 2
            for ws in (on_a, on_b):
                frame = await ws.receive_json(timeout=5)
                assert event_of(frame) == (channel, "story", {"n": number}) and frame["offset"] == 1
    # The last local subscriber gone, each instance leaves the shard channel by itself.
    async def left() -> None:
        for channel in channels:
            assert await shard_numsub(nodes, bus_of(a).redis_channel(channel)) == [0, 0, 0]

    await eventually(left)


async def test_the_control_channel_reaches_every_instance(rt_client, nodes) -> None:
    a, b = await rt_client(), await rt_client()
    name = bus_of(a).redis_channel(CONTROL)

    async def joined() -> None:         # each instance subscribes it as its bus starts
        counts = await shard_numsub(nodes, name)
        assert sorted(counts)[:2] == [0, 0] and max(counts) >= 2     # one shard, every instance on it

    await eventually(joined)
    heard: list[dict[str, Any]] = []
    bus_of(b).on_control = heard.append
    await bus_of(a).publish_control("user:1", "revoke", jti=None)
    await eventually(lambda: heard == [{"target": "user:1", "action": "revoke", "jti": None}])


async def test_subscribers_keep_receiving_after_their_node_restarts(rt_client, nodes, valkey_cluster) -> None:
    a, b = await rt_client(), await rt_client()
    restarted, kept = channel_on(a, valkey_cluster, 1, "news:r"), channel_on(a, valkey_cluster, 2, "news:k")
    async with a.ws_connect("/ws") as ws:
        first = await subscribe(ws, restarted, 1)
        await subscribe(ws, kept, 2)
        await asyncio.to_thread(valkey_cluster.restart, 1)

        # The node lost its memory and a's link reconnects by itself: publish from b until one
        # event of the restarted shard arrives, then every later one must.
        async def delivered() -> dict[str, Any]:
            await b.app[keys.BUS].publish(restarted, "story", {"n": "probe"})
            frame = await ws.receive_json(timeout=0.5)
            assert event_of(frame)[0] == restarted
            return frame

        probe = await eventually(delivered, timeout=20, interval=0.2)
        assert probe["offset"] == 1                      # a new stream: the old one was in the lost memory
        while True:                                      # drain probes published before the first arrived
            try:
                await ws.receive_json(timeout=0.3)
            except TimeoutError:
                break
        for n in range(5):
            await b.app[keys.BUS].publish(restarted, "story", {"n": n})
            await b.app[keys.BUS].publish(kept, "story", {"n": n})
        got = [event_of(await ws.receive_json(timeout=5)) for _ in range(10)]
        assert [data["n"] for channel, _, data in got if channel == restarted] == list(range(5))
        assert [data["n"] for channel, _, data in got if channel == kept] == list(range(5))
        # The history of the old epoch is gone with the node's memory: recovery says so.
        async with b.ws_connect("/ws") as again:
            await again.send_json({"type": "subscribe", "channel": restarted, "id": 3,
                                   "since": {"offset": first["offset"], "epoch": first["epoch"]}})
            reply = await again.receive_json(timeout=5)
            assert reply["recovered"] is False and reply["epoch"] != first["epoch"]
    assert metric(await (await a.get("/metrics")).text(), "bus_reconnects_total") >= 1

    async def left() -> None:
        assert await shard_numsub(nodes, bus_of(a).redis_channel(restarted)) == [0, 0, 0]

    await eventually(left)
