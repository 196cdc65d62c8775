"""SPEC §8.4 under load and faults: slow consumers, a Redis restart, graceful shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from aiohttp import WSMsgType

from backend import keys
from backend.config import Config
from backend.embedded import EmbeddedValkey, free_port
from tests.realtime.conftest import event_of, metric, subscribe
from tests.services import wait_ready
from tests.support import eventually

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 5000


async def test_slow_consumer_is_closed_while_another_gets_every_event_in_order(rt_client) -> None:
    a, b = await rt_client(ws_send_buffer=256 * 1024), await rt_client()
    pad = "x" * 4000          # 5,000 events ≈ 20 MB: far more than the kernel's socket buffers hold
    async with a.ws_connect("/ws") as fast, a.ws_connect("/ws") as slow:
        await subscribe(fast, "news")
        await subscribe(slow, "news")
        # The slow client stops reading: a small receive buffer so the kernel does not absorb it all.
        slow.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)

        async def publish_all() -> None:
            for n in range(EVENTS):
                await b.app[keys.BUS].publish("news", "tick", {"n": n, "pad": pad})

        publisher = asyncio.create_task(publish_all())
        received = [(await fast.receive_json(timeout=10))["data"]["n"] for _ in range(EVENTS)]
        await publisher
        assert received == list(range(EVENTS))

        # What the slow client was sent before it fell behind, then the close frame (a normal
        # buffer again: with 4 KiB the reads crawl at delayed-ACK pace).
        slow.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        got = 0
        while (message := await slow.receive(timeout=10)).type is WSMsgType.TEXT:
            got += 1
        assert message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
        assert slow.close_code == 1013
        assert got < EVENTS
    metrics = await (await a.get("/metrics")).text()
    assert metric(metrics, "ws_slow_consumer_closes_total") == 1
    # Frames not written to the closed slow socket count per subscriber; every publish succeeded.
    assert metric(metrics, "events_dropped_total") > 0
    assert metric(await (await b.get("/metrics")).text(), "events_publish_failed_total") == 0


async def wait_for_receivers(client: aiohttp.test_utils.TestClient, channel: str, marker: int) -> None:
    """Publish `marker` until some instance hears it (the bus reconnects with backoff, ≤ 2 s)."""
    async def heard() -> None:
        receivers = await client.app[keys.BUS].publish(channel, "back", {"n": marker})
        assert receivers > 0, "the bus did not come back within 15 s"

    await eventually(heard, timeout=15, interval=0.05)


async def test_redis_restart_keeps_live_subscriptions(rt_client, tmp_path: Path) -> None:
    valkey = EmbeddedValkey(tmp_path / "valkey", port=free_port(), persist=False)
    url = valkey.start()
    try:
        a, b = await rt_client(redis_url=url), await rt_client(redis_url=url)
        async with a.ws_connect("/ws") as ws:
            await subscribe(ws, "news")
            await b.app[keys.BUS].publish("news", "before", {"n": 0})
            assert event_of(await ws.receive_json(timeout=5))[1] == "before"

            await asyncio.to_thread(valkey.stop)
            health = await (await a.get("/health/ready")).json()
            assert (health["status"], health["db"], health["redis"], health["connections"]) == \
                ("degraded", "ok", "down", 1)
            assert (await a.get("/health/live")).status == 200
            assert await b.app[keys.BUS].publish("news", "lost", {}) == 0     # dropped, not an error
            # A failed publish is its own counter: no subscriber anywhere was skipped.
            on_b = await (await b.get("/metrics")).text()
            assert metric(on_b, "events_publish_failed_total") >= 1
            assert metric(on_b, "events_dropped_total") == 0

            await asyncio.to_thread(valkey.start)
            await wait_for_receivers(b, "news", 1)
            event = await ws.receive_json(timeout=5)
            assert event_of(event) == ("news", "back", {"n": 1})        # the same socket, no reconnect
            health = await (await a.get("/health/ready")).json()
            assert (health["status"], health["redis"]) == ("ok", "ok")
            metrics = await (await a.get("/metrics")).text()
            assert "bus_reconnects_total 0.0" not in metrics
    finally:
        valkey.stop()


async def test_sigterm_closes_sockets_with_1001_and_exits_within_5_s(config: Config) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env |= {"DATABASE_URL": config.database_url or "", "REDIS_URL": config.redis_url or "",
            "REDIS_PREFIX": config.redis_prefix, "JWT_SECRET": "sigterm-test-secret"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "serve", "--host", "127.0.0.1",
                             "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        async with aiohttp.ClientSession() as session:
            await wait_ready(port, proc)
            async with session.ws_connect(f"http://127.0.0.1:{port}/ws") as first, \
                    session.ws_connect(f"http://127.0.0.1:{port}/ws") as second:
                for ws in (first, second):
                    await ws.send_json({"type": "ping", "id": 1})
                    assert await ws.receive_json(timeout=5) == {"type": "pong", "id": 1}
                started = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                for ws in (first, second):
                    message = await ws.receive(timeout=5)
                    assert message.type is WSMsgType.CLOSE and message.data == 1001
                await asyncio.to_thread(proc.wait, 5)
                assert time.monotonic() - started < 5
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
