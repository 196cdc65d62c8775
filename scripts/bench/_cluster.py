"""`ws_fanout.py --cluster`: the fan-out on one Redis and on a 3-master Valkey Cluster, side by side.

Two app instances (A on CPU 0, B on CPU 1) per target; N websocket clients split over A and B and
over 8 channels `benchc:<k>` chosen so that the cluster's three shards each own some of them; events
published through both instances' `POST /api/realtime/publish`. Each event carries its send time;
a client's delivery latency is receive time − send time (one clock: everything runs here).

Phases: `burst` (every event at once, `--cluster-events` per channel: deliveries/s and latency) and
`paced` (20 events/s spread over the channels for 3 s: latency when nothing queues). Then a per-shard
pub/sub figure without the app: per shard, one channel, one subscriber, the app's own publish script
(offset + history + SPUBLISH) pipelined on one connection — publishes/s the shard took and
messages/s its subscriber got, all three shards at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

CHANNELS = 8
NAMESPACE = "benchc"
PACED_RATE, PACED_SECONDS = 20, 3.0
PIPELINE, SHARD_SECONDS = 200, 3.0


@dataclasses.dataclass
class Tally:
    """What the clients saw: latencies (ms) per phase and the last receive time."""

    latencies: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    last: float = 0.0
    burst_target: int = 0
    burst_done: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    def add(self, phase: str, sent: float) -> None:
        now = time.time()
        seen = self.latencies.setdefault(phase, [])
        seen.append((now - sent) * 1000)
        self.last = now
        if phase == "burst" and len(seen) >= self.burst_target:
            self.burst_done.set()


def pick_channels(prefix: str, owner_of: Any) -> list[str]:
    """8 channels spread over the shards round-robin (3/3/2), by their Redis names' slots."""
    from redis.crc import key_slot

    wanted, found, n = [i % 3 for i in range(CHANNELS)], [], 0
    while len(found) < CHANNELS:
        channel = f"{NAMESPACE}:{n}"
        shard = owner_of(key_slot(("{" + prefix + "rt:" + channel + "}").encode()))
        if shard == wanted[len(found)]:
            found.append(channel)
        n += 1
    return found


async def measure(base_a: str, base_b: str, login: str, password: str, channels: list[str], n: int,
                  events: int) -> dict[str, Any]:
    import aiohttp

    tally = Tally(burst_target=events * CHANNELS * (n // CHANNELS))
    phase = {"name": "burst"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        auth_resp = await http.post(f"{base_b}/api/auth/login/", json={"login": login, "password": password})
        auth = {"Authorization": f"Bearer {(await auth_resp.json())['access']}"}
        sockets = []
        for i in range(n):
            ws = await http.ws_connect(f"{(base_a, base_b)[i % 2]}/ws", max_msg_size=0)
            await ws.send_json({"type": "subscribe", "channel": channels[(i // 2) % CHANNELS], "id": 1})
            sockets.append(ws)
        for ws in sockets:
            while (await ws.receive_json(timeout=30))["type"] != "subscribed":
                pass

        async def read(ws: aiohttp.ClientWebSocketResponse) -> None:
            async for message in ws:
                frame = message.json()
                if frame.get("type") == "event":
                    tally.add(phase["name"], frame["data"]["ts"])

        readers = [asyncio.create_task(read(ws)) for ws in sockets]
        gate = asyncio.Semaphore(16)

        async def publish(seq: int) -> None:
            async with gate:
                body = {"channel": channels[seq % CHANNELS], "event": "tick", "data": {"seq": seq, "ts": time.time()}}
                async with http.post(f"{(base_a, base_b)[seq % 2]}/api/realtime/publish", json=body,
                                     headers=auth) as resp:
                    resp.raise_for_status()

        expected = events * CHANNELS * (n // CHANNELS)
        started = time.time()
        await asyncio.gather(*(publish(seq) for seq in range(events * CHANNELS)))
        with contextlib.suppress(TimeoutError):       # a lost delivery shows in the count, not as a hang
            await asyncio.wait_for(tally.burst_done.wait(), 60)
        burst = tally.latencies.get("burst", [])
        burst_s = max(tally.last - started, 1e-9)
        await asyncio.sleep(1)
        phase["name"] = "paced"
        for seq in range(int(PACED_RATE * PACED_SECONDS)):
            await publish(seq)
            await asyncio.sleep(1 / PACED_RATE)
        await asyncio.sleep(1)
        for task in readers:
            task.cancel()
        for ws in sockets:
            await ws.close()
    paced = tally.latencies.get("paced", [])
    return {"n": n, "burst_deliveries": len(burst), "burst_expected": expected, "burst_s": burst_s,
            "burst_per_s": len(burst) / burst_s, "burst_p50": pct(burst, 50), "burst_p99": pct(burst, 99),
            "paced_p50": pct(paced, 50), "paced_p99": pct(paced, 99)}


async def shard_throughput(url: str, prefix: str) -> list[dict[str, Any]]:
    """Per shard, all at once: the publish script pipelined (PIPELINE calls per round trip) on one
    connection to the node for SHARD_SECONDS, one subscriber counting what the shard delivered."""
    from redis.asyncio import Redis, RedisCluster
    from redis.crc import key_slot

    from backend.realtime.const import STREAM_META_TTL
    from backend.realtime.streams import PUBLISH_LUA, new_epoch, sharded

    cluster = RedisCluster.from_url(url)
    await cluster.initialize()
    primaries = sorted(cluster.get_primaries(), key=lambda node: node.port)
    picked: dict[str, str] = {}
    n = 0
    while len(picked) < len(primaries):
        name = "{" + prefix + f"rt:shard:{n}" + "}"           # the bus's channel → Redis name mapping
        picked.setdefault(cluster.nodes_manager.get_node_from_slot(key_slot(name.encode())).name, name)
        n += 1
    await cluster.aclose()
    frame = b'{"type":"event","channel":"x","event":"tick","data":{"pad":"' + b"x" * 120 + b'"}}'
    stop = time.monotonic() + SHARD_SECONDS

    async def shard(node: Any) -> dict[str, Any]:
        name = picked[node.name]
        client, sub = Redis(host=node.host, port=node.port), Redis(host=node.host, port=node.port)
        pubsub = sub.pubsub()
        await pubsub.ssubscribe(name)
        await pubsub.get_message(timeout=1)
        script = client.register_script(sharded(PUBLISH_LUA))
        got = sent = 0

        async def count() -> None:
            nonlocal got
            while True:
                if await pubsub.get_message(timeout=1) is not None:
                    got += 1

        counter = asyncio.create_task(count())
        cpu_before = await server_cpu(client)
        started = time.monotonic()
        while time.monotonic() < stop:
            async with client.pipeline(transaction=False) as pipe:
                for _ in range(PIPELINE):
                    await script(keys=[name + ":m", name + ":h"], args=[
                        frame, name, 1, 100, 300_000, int(STREAM_META_TTL * 1000), new_epoch(),
                        int(time.time() * 1000), 1, ""], client=pipe)
                await pipe.execute()
            sent += PIPELINE
        elapsed = time.monotonic() - started
        busy = (await server_cpu(client) - cpu_before) / elapsed      # share of one core the node used
        await asyncio.sleep(0.5)
        counter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await counter
        await pubsub.aclose()
        await sub.aclose()
        await client.aclose()
        return {"node": node.name, "publishes_per_s": sent / elapsed, "received_per_s": got / elapsed,
                "cpu": busy, "per_core_s": sent / elapsed / busy if busy > 0 else None}

    return list(await asyncio.gather(*(shard(node) for node in primaries)))


async def server_cpu(client: Any) -> float:
    """CPU seconds (user + system) the Valkey node has used."""
    info = await client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def run_cluster(args: argparse.Namespace, serve_command: list[str], pair: Any, processes: Any,
                admin: tuple[str, str], ports: tuple[int, int]) -> None:
    """Both targets, one after the other, on the same database; prints a markdown report."""
    from backend.config import Config
    from backend.embedded_share import services
    from tests.cluster.valkey_cluster import ValkeyCluster

    data_dir = Path(tempfile.mkdtemp(prefix="ws-bench-cluster-"))
    cluster = ValkeyCluster(root=data_dir / "cluster")
    base = dataclasses.replace(Config.from_env(), instance="")
    rows: list[tuple[str, dict[str, Any]]] = []
    shards: list[dict[str, Any]] = []
    try:
        cluster.start()
        with services(base, data_dir) as ready, processes() as children:
            prefix = f"bench{uuid.uuid4().hex[:6]}:"
            env = {**os.environ, "DATABASE_URL": str(ready.database_url), "LOG_LEVEL": "WARNING",
                   "JWT_SECRET": os.environ.get("JWT_SECRET", uuid.uuid4().hex * 2), "REDIS_PREFIX": prefix}
            python = [sys.executable, str(Path(__file__).resolve().parents[2] / "run.py")]
            single_env = {**env, "REDIS_URL": str(ready.redis_url)}
            subprocess.run([*python, "migrate"], env=single_env, check=True, stdout=subprocess.DEVNULL)
            subprocess.run([*python, "create-user", "--login", admin[0], "--password", admin[1], "--role", "admin"],
                           env=single_env, check=False, stdout=subprocess.DEVNULL)
            channels = pick_channels(prefix, lambda slot: cluster.nodes.index(cluster.owner(slot)))
            targets = [("single Redis", single_env),
                       ("3-master cluster", {**env, "REDIS_URL": cluster.url, "REDIS_CLUSTER": "true"})]
            for label, target_env in targets:
                for n in args.n:
                    with pair(children, serve_command, *ports, "/health/ready", target_env):
                        result = asyncio.run(measure(f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}",
                                                     *admin, channels, n, args.cluster_events))
                    print(label, result, flush=True)
                    rows.append((label, result))
            shards = asyncio.run(shard_throughput(cluster.url, prefix))
    finally:
        cluster.stop()
    report(args, rows, shards)


def report(args: argparse.Namespace, rows: list[tuple[str, dict[str, Any]]], shards: list[dict[str, Any]]) -> None:
    lines = [f"`{' '.join(['.venv/bin/python', 'scripts/bench/ws_fanout.py', *sys.argv[1:]])}` — instances A "
             "(CPU 0) and B (CPU 1), clients and publisher in this process; subscribers half on A, half on B, "
             f"over {CHANNELS} channels (3/3/2 per shard on the cluster); publishes through A and B alternately.", "",
             "| Redis | N | burst deliveries | burst s | burst deliveries/s | burst p50 / p99 ms | "
             "paced (20 ev/s) p50 / p99 ms |", "|---|---:|---:|---:|---:|---:|---:|"]
    for label, r in rows:
        lines.append(f"| {label} | {r['n']:,} | {r['burst_deliveries']:,} / {r['burst_expected']:,} | "
                     f"{r['burst_s']:.2f} | {r['burst_per_s']:,.0f} | {fmt(r['burst_p50'])} / {fmt(r['burst_p99'])} | "
                     f"{fmt(r['paced_p50'])} / {fmt(r['paced_p99'])} |")
    lines += ["", f"Per-shard pub/sub, the publish script (offset + history + SPUBLISH, 150-byte frames) pipelined "
              f"{PIPELINE} per round trip on one connection per shard, one subscriber per shard, all shards at once "
              f"for {SHARD_SECONDS:g} s (one Python client process for all: a lower bound of what a shard takes):", "",
              "| node | publishes/s | messages received/s | node CPU | publishes/s per busy core (extrapolated) |",
              "|---|---:|---:|---:|---:|"]
    lines += [f"| {s['node']} | {s['publishes_per_s']:,.0f} | {s['received_per_s']:,.0f} | {s['cpu']:.0%} | "
              f"{s['per_core_s'] or 0:,.0f} |" for s in shards]
    text = "\n".join(lines)
    print(text, flush=True)
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with (results / f"ws-fanout-{time.strftime('%Y-%m-%d', time.gmtime())}.md").open("a") as out:
        out.write(f"## ws fan-out, one Redis and a 3-master cluster, {stamp}\n\n{text}\n\n")


def fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"
