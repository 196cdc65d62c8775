"""SIGKILL of an instance under its clients (SPEC §12.2, §12.4, §13.4): they reconnect to another
instance and recover with no loss and no duplicate; its users' presence expires."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from backend import keys
from backend.config import Config
from backend.embedded import free_port
from tests.realtime.conftest import subscribe
from tests.services import wait_ready

ROOT = Path(__file__).resolve().parents[2]
PRESENCE_TTL = 1.5
CLIENTS = 20


def serve(config: Config, port: int) -> subprocess.Popen[bytes]:
    """`run.py serve` on the test's database, Redis, key prefix and signing key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "JWT_"))}
    env |= {"DATABASE_URL": config.database_url or "", "REDIS_URL": config.redis_url or "",
            "REDIS_PREFIX": config.redis_prefix, "JWT_SECRETS": ",".join(f"{k}:{s}" for k, s in config.jwt_keys),
            "PRESENCE_TTL": str(PRESENCE_TTL), "LOG_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, str(ROOT / "run.py"), "serve", "--port", str(port)], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.slow
async def test_clients_of_a_killed_instance_recover_everything_elsewhere(make_client, config, make_user) -> None:
    a = await make_client(presence_ttl=PRESENCE_TTL)
    port = free_port()
    victim = serve(config, port)
    operators = [await make_user(role="operator") for _ in range(4)]
    watcher, ghost = await make_user(role="operator"), await make_user(role="operator")
    bus = a.app[keys.BUS]
    try:
        await wait_ready(port, victim)
        async with aiohttp.ClientSession() as http, a.ws_connect("/ws", headers=watcher.headers) as watch:
            assert (await subscribe(watch, "dashboard"))["type"] == "subscribed"
            ghost_ws = await http.ws_connect(f"http://127.0.0.1:{port}/ws", headers=ghost.headers)
            assert (await subscribe(ghost_ws, "dashboard"))["type"] == "subscribed"
            stop, killed_at = asyncio.Event(), [0.0]
            first_delivered = [asyncio.Event() for _ in range(CLIENTS)]

            async def client(index: int) -> tuple[list[int], str]:
                user = operators[index % len(operators)]
                ws = await http.ws_connect(f"http://127.0.0.1:{port}/ws", headers=user.headers)
                reply = await subscribe(ws, "dashboard")
                epoch, got, last = reply["epoch"], [], reply["offset"]
                while True:
                    message = await ws.receive(timeout=10)
                    if message.type is aiohttp.WSMsgType.TEXT:
                        frame = message.json()
                        if frame.get("type") == "event" and "offset" in frame:
                            got.append(frame["offset"])
                            last = frame["offset"]
                            first_delivered[index].set()
                            if frame["event"] == "done":
                                return got, epoch
                        continue
                    # The instance died under us: reconnect (to the survivor) and resume after `last`.
                    await ws.close()
                    ws = await a.ws_connect("/ws", headers=user.headers)
                    await ws.send_json({"type": "subscribe", "channel": "dashboard", "id": 2,
                                        "since": {"offset": last, "epoch": epoch}})
                    while (reply := await ws.receive_json(timeout=5))["type"] != "subscribed":
                        pass
                    assert reply["recovered"] is True, reply

            async def publisher() -> None:
                for n in itertools.count():
                    if stop.is_set():
                        break
                    await bus.publish("dashboard", "tick", {"n": n})
                    await asyncio.sleep(0.005)
                await bus.publish("dashboard", "done", {})

            clients = [asyncio.create_task(client(i)) for i in range(CLIENTS)]
            feeding = asyncio.create_task(publisher())
            async with asyncio.timeout(15):
                await asyncio.gather(*(event.wait() for event in first_delivered))
                victim.send_signal(signal.SIGKILL)
                killed_at[0] = time.monotonic()
                await asyncio.to_thread(victim.wait, 10)
                await asyncio.sleep(0.3)          # the publisher keeps going while clients reconnect
                stop.set()
                await feeding
                results = await asyncio.gather(*clients)
            for got, _ in results:
                assert got == list(range(got[0], got[-1] + 1)), "a gap or a duplicate"
            top = max(got[-1] for got, _ in results)
            assert all(got[-1] == top for got, _ in results)

            # The ghost's socket died with its instance and never came back: it leaves by expiry.
            async with asyncio.timeout(PRESENCE_TTL + 5):
                while True:
                    frame = await watch.receive_json()
                    if frame.get("event") == "presence.left" and frame["data"]["id"] == ghost.id:
                        break
            # Within PRESENCE_TTL of the kill, plus scheduling slack for a loaded test machine.
            assert time.monotonic() - killed_at[0] < PRESENCE_TTL + 1.0
            await ghost_ws.close()
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait(10)
