#!/usr/bin/env python3
"""Soak: bounded mixed load on two instances for a set time, then the invariants (issue 10).

    .venv/bin/python scripts/bench/soak.py --duration 60
    .venv/bin/python scripts/bench/soak.py --duration 600 --markdown   # + scripts/bench/results/soak-<date>.md

It starts embedded PostgreSQL and Valkey in a temporary data dir (DATABASE_URL / REDIS_URL are
ignored: the checks read the soak's own database), migrates, creates an admin and a CallUp app with
`run.py`, and starts two `run.py serve` instances. A fixed set of clients then works both instances
at once, each waiting for its answer before the next request (so the load is bounded by the client
count, not by a rate): bookings (reserve, then cancel or a short trip), fleet passenger-car records,
chat over websockets (one message at a time, acknowledged, each socket reopened on the other
instance every 100 messages, a reader on each chat), and CallUp orders (half of them verified).

A warm-up of the same load fills the pools; the servers' descriptors are counted once its clients
have gone, and again after the main run's. Afterwards: every acknowledged message stored once and
delivered once to its reader, no car held by two clients at once and no car whose state disagrees
with its bookings, every waybill's aggregates and every record chain right (SPEC §5.5–5.6), RSS of
the last third of the run no higher than the middle third (within max(5 MB, 5 %)), descriptors back
to their start level (client sockets, files and pipes ±2; PostgreSQL connections within the idle
pools' size, Redis connections at most 8 more than at the start), and no 5xx. One summary line; exit status 1 on any violation.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import datetime as dt
import itertools
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import aiohttp
import psutil
from _server import free_port, wait_ready
from _soak_checks import Hold, Watched, describe, double_booked, settle, stored, unexpected, watch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "scripts" / "bench" / "results"
PASSWORD = "soak-password-1"
RECORD = {"target": "soak", "departure_time": "08:00:00", "arrival_time": "09:00:00", "distance_city_km": 10,
          "distance_area_km": 5, "fuel_refueled": "2.000", "fuel_used": "1.500"}
DB_POOL_SIZE = 10
POSTGRES_CAP = DB_POOL_SIZE + DB_POOL_SIZE // 2    # idle SQLAlchemy pool + hot asyncpg pool (backend/app.py)
# Short enough that reservations expire (and the sweepers work) during the run; fast simulated calls.
SERVER_ENV = {"RESERVATION_TTL": "20", "SWEEP_INTERVAL": "1", "CALLUP_SIM_DELAY": "0.2", "CALLUP_CODE_TTL": "30",
              "CALLUP_APP_RATE": "1000000/60", "CALLUP_PHONE_LIMIT": "1000/600", "LOG_LEVEL": "WARNING",
              "DB_POOL_SIZE": str(DB_POOL_SIZE), "DB_MAX_OVERFLOW": str(DB_POOL_SIZE)}
RECONNECT_EVERY = 100


@dataclasses.dataclass
class User:
    id: int
    headers: dict[str, str]


@dataclasses.dataclass
class Load:
    """The clients' shared record of what they did and what they were told."""

    urls: list[str]
    deadline: float = 0.0
    ops: int = 0
    statuses: collections.Counter[tuple[str, int]] = dataclasses.field(default_factory=collections.Counter)
    holds: list[Hold] = dataclasses.field(default_factory=list)
    acked: list[str] = dataclasses.field(default_factory=list)
    unacked: int = 0
    delivered: dict[int, list[int]] = dataclasses.field(default_factory=dict)   # chat → message ids heard
    phones: itertools.count = dataclasses.field(default_factory=lambda: itertools.count(79000000000))

    def running(self) -> bool:
        return time.monotonic() < self.deadline

    async def call(self, http: aiohttp.ClientSession, name: str, method: str, url: str, body: Any = None,
                   headers: dict[str, str] | None = None) -> tuple[int, Any]:
        async with http.request(method, url, json=body, headers=headers) as resp:
            data = await resp.json() if resp.content_type == "application/json" else None
        self.ops += 1
        self.statuses[(name, resp.status)] += 1
        return resp.status, data


def when(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()


async def booker(load: Load, http: aiohttp.ClientSession, user: User, cars: list[int]) -> None:
    """Reserve a random car on a random instance; then cancel it, or take a short trip."""
    while load.running():
        url = random.choice(load.urls)
        status, booking = await load.call(http, "book", "POST", f"{url}/api/bookings", {"car": random.choice(cars)},
                                          user.headers)
        if status != 201:
            await asyncio.sleep(0.05)
            continue
        hold = Hold(booking["car"], time.time(), when(booking["reserved_until"]))
        load.holds.append(hold)
        await asyncio.sleep(random.uniform(0, 0.3))
        path = f"{random.choice(load.urls)}/api/bookings/{booking['id']}"
        if random.random() < 0.75:
            hold.until = min(hold.until, time.time())
            await load.call(http, "cancel", "POST", f"{path}/cancel", {}, user.headers)
            continue
        status, _ = await load.call(http, "start", "POST", f"{path}/start", {}, user.headers)
        await asyncio.sleep(random.uniform(0, 0.2))
        hold.until = min(hold.until, time.time()) if status != 200 else time.time()
        if status == 200:
            await load.call(http, "finish", "POST", f"{path}/finish",
                            {"lat": "55.03", "lon": "82.92", "fuel_level": "30"}, user.headers)


async def driver(load: Load, http: aiohttp.ClientSession, user: User, waybill: int) -> None:
    """Records on the driver's own waybill, on alternating instances."""
    for n in itertools.count():
        if not load.running():
            return
        await load.call(http, "record", "POST", f"{load.urls[n % 2]}/api/passenger-car-records/",
                        {**RECORD, "passenger_car_waybill": waybill}, user.headers)


async def sender(load: Load, http: aiohttp.ClientSession, user: User, chat: int) -> None:
    """Acknowledged sends over a websocket reopened on the other instance every RECONNECT_EVERY messages."""
    frame_ids = itertools.count()
    for turn in itertools.count():
        async with http.ws_connect(load.urls[turn % 2].replace("http", "ws") + "/ws", headers=user.headers) as ws:
            for _ in range(RECONNECT_EVERY):
                if not load.running():
                    return
                frame_id, client_id = next(frame_ids), uuid.uuid4().hex
                await ws.send_json({"type": "send", "chat_id": chat, "text": f"soak {frame_id}",
                                    "client_id": client_id, "id": frame_id})
                try:
                    async with asyncio.timeout(10):
                        while True:
                            frame = await ws.receive_json()
                            if frame.get("id") == frame_id:
                                break
                except TimeoutError:
                    load.unacked += 1
                    break
                load.ops += 1
                load.statuses[("ws send", 200 if frame.get("type") == "ack" else 400)] += 1
                if frame.get("type") == "ack":
                    load.acked.append(client_id)
                await asyncio.sleep(0.05)      # a person's pace, well under WS_RATE frames per second


async def reader(load: Load, http: aiohttp.ClientSession, user: User, chat: int, url: str,
                 stop: asyncio.Event, ready: asyncio.Event) -> None:
    """Hears the chat's messages until `stop`; resumes with `since` should its socket drop."""
    heard = load.delivered.setdefault(chat, [])
    since: dict[str, Any] | None = None
    while not stop.is_set():
        async with http.ws_connect(url.replace("http", "ws") + "/ws", headers=user.headers) as ws:
            await ws.send_json({"type": "subscribe", "channel": f"chat:{chat}", "id": 1,
                                **({"since": since} if since else {})})
            while (reply := await ws.receive_json(timeout=10))["type"] != "subscribed":
                pass
            since = since or {"offset": reply["offset"], "epoch": reply["epoch"]}
            ready.set()
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    message = await ws.receive(timeout=0.5)
                    if message.type is not aiohttp.WSMsgType.TEXT:
                        break
                    frame = message.json()
                    if frame.get("type") != "event" or frame.get("channel") != f"chat:{chat}":
                        continue
                    if frame["event"] == "message.created":
                        heard.append(frame["data"]["id"])
                    if "offset" in frame:
                        since = {"offset": frame["offset"], "epoch": since["epoch"]}


async def orders(load: Load, http: aiohttp.ClientSession, token: str) -> None:
    """CallUp orders; every other one verified with its code once the simulated call came."""
    headers = {"X-Application-Token": token}
    for n in itertools.count():
        if not load.running():
            return
        url = load.urls[n % 2]
        status, body = await load.call(http, "order", "POST", f"{url}/v1/orders?fields=code.value",
                                       {"phone": str(next(load.phones))}, headers)
        if status == 200 and n % 2:
            await asyncio.sleep(0.3)
            data = body["data"]
            await load.call(http, "verify", "GET", f"{load.urls[(n + 1) % 2]}/v1/auth/{data['id']}/{data['code']['value']}",
                            None, headers)


@dataclasses.dataclass
class World:
    bookers: list[User]
    cars: list[int]
    drivers: list[tuple[User, int]]
    chats: list[tuple[User, User, int]]
    app_token: str


async def phase(load: Load, world: World, seconds: float) -> None:
    """Every client of the world, in a session of its own, for `seconds`; their sockets closed after."""
    load.deadline = time.monotonic() + seconds
    stop = asyncio.Event()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        readers_ready = [asyncio.Event() for _ in world.chats]
        readers = [asyncio.create_task(reader(load, http, b, chat, load.urls[1], stop, ready))
                   for (_, b, chat), ready in zip(world.chats, readers_ready, strict=True)]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readers_ready)), 30)
        work: list[Awaitable[None]] = [booker(load, http, u, world.cars) for u in world.bookers]
        work += [driver(load, http, u, w) for u, w in world.drivers]
        work += [sender(load, http, a, chat) for a, _, chat in world.chats]
        work += [orders(load, http, world.app_token) for _ in range(2)]
        await asyncio.gather(*work)
        await asyncio.sleep(2)            # the last messages reach their readers
        stop.set()
        await asyncio.gather(*readers)


async def build(http: aiohttp.ClientSession, url: str, admin: dict[str, str], args: argparse.Namespace,
                app_token: str) -> World:
    """Users, cars, waybills and chats through the API."""
    async def api(method: str, path: str, body: Any = None, headers: dict[str, str] = admin) -> Any:
        async with http.request(method, url + path, json=body, headers=headers) as resp:
            data = await resp.json()
            if resp.status not in (200, 201):
                raise SystemExit(f"setup: {method} {path} -> {resp.status} {data}")
            return data

    roles = {r["name"]: r["id"] for r in (await api("GET", "/api/roles/?limit=500"))["results"]}
    tag = uuid.uuid4().hex[:6]

    async def user(role: str, n: int) -> User:
        login = f"soak-{tag}-{role}{n}"
        row = await api("POST", "/api/users/", {"login": login, "password": PASSWORD, "role": roles[role],
                                                "email": f"{login}@example.com", "name": "Soak"})
        token = (await api("POST", "/api/auth/login/", {"login": login, "password": PASSWORD}))["access"]
        return User(row["id"], {"Authorization": f"Bearer {token}"})

    bookers = [await user("client", n) for n in range(args.bookers)]
    cars = []
    for _ in range(max(2, args.bookers * 2 // 3)):
        cars.append((await api("POST", "/api/passenger-cars/", {
            "number": f"K{uuid.uuid4().hex[:7]}", "shared": True, "lat": "55.03", "lon": "82.92",
            "fuel_level": "40", "tariff_per_minute": "7.5"}))["id"])
    drivers = []
    fleet = []
    for _ in range(2):
        car = (await api("POST", "/api/passenger-cars/", {"number": f"W{uuid.uuid4().hex[:7]}"}))["id"]
        await api("POST", "/api/passenger-car-norms/", {"car": car, "season": "summer", "city_norm": "0.090",
                                                       "area_norm": "0.110", "date": "2024-09-01"})
        await api("POST", "/api/passenger-car-odometer-fuel/", {"car": car, "odometer": 100000, "fuel": "40.000",
                                                               "date": "2024-09-01"})
        fleet.append(car)
    for n in range(args.drivers):
        who = await user("driver", n)
        waybill = await api("POST", "/api/passenger-car-waybills/", {
            "car": fleet[n % 2], "driver": who.id, "date": "2024-09-15", "norm_season": "summer"})
        drivers.append((who, waybill["id"]))
    chats = []
    for n in range(args.chats):
        a, b = await user("client", 100 + 2 * n), await user("client", 101 + 2 * n)
        chats.append((a, b, (await api("POST", "/chats", {"user_id": b.id}, a.headers))["id"]))
    return World(bookers, cars, drivers, chats, app_token)


def start_instances(env: dict[str, str], data_dir: Path) -> list[tuple[str, subprocess.Popen[bytes]]]:
    started = []
    for name in ("A", "B"):
        port = free_port()
        log = (data_dir / f"instance-{name}.log").open("wb")
        proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "serve", "--port", str(port)], cwd=ROOT,
                                env=env, stdout=subprocess.DEVNULL, stderr=log)
        started.append((f"http://127.0.0.1:{port}", proc))
    return started


async def soak(args: argparse.Namespace, env: dict[str, str], data_dir: Path, app_token: str) -> tuple[str, bool]:
    instances = start_instances(env, data_dir)
    try:
        await asyncio.gather(*(wait_ready(url, proc) for url, proc in instances))
        urls = [url for url, _ in instances]
        ports = urlparse(env["DATABASE_URL"]).port or 5432, urlparse(env["REDIS_URL"]).port or 6379
        servers = [Watched(name, psutil.Process(proc.pid), *ports)
                   for name, (_, proc) in zip("AB", instances, strict=True)]
        async with aiohttp.ClientSession() as http:
            async with http.post(urls[0] + "/api/auth/login/", json={"login": "soak-admin", "password": PASSWORD}) as r:
                admin = {"Authorization": f"Bearer {(await r.json())['access']}"}
            world = await build(http, urls[0], admin, args, app_token)
        load = Load(urls)
        await phase(load, world, args.warmup)
        for server in servers:
            server.fds_start, server.kinds_start = await settle(server)
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch(servers, stop, max(0.5, args.duration / 300)))
        await phase(load, world, args.duration)
        stop.set()
        await watcher
        for server in servers:
            server.fds_end, server.kinds_end = await settle(server)
        return await verdict(args, env["DATABASE_URL"], load, servers)
    finally:
        for _, proc in instances:
            proc.terminate()
        for _, proc in instances:
            try:
                await asyncio.to_thread(proc.wait, 30)
            except subprocess.TimeoutExpired:
                proc.kill()


async def verdict(args: argparse.Namespace, database_url: str, load: Load, servers: list[Watched]) -> tuple[str, bool]:
    db = await stored(database_url)
    acked = set(load.acked)
    lost = sum(1 for c in acked if db.copies.get(c, 0) == 0) + load.unacked
    duplicated = sum(n - 1 for n in db.copies.values() if n > 1) + (len(load.acked) - len(acked))
    for chat, heard in load.delivered.items():
        stored_ids = db.chat_messages.get(chat, [])
        lost += len(set(stored_ids) - set(heard))
        duplicated += len(heard) - len(set(heard))
    double = double_booked(load.holds) + db.booking_breaches
    flat = all(s.flat(5.0, 0.05) for s in servers)
    fds_back = all(s.fds_back(2, POSTGRES_CAP, 8) for s in servers)
    errors = unexpected(dict(load.statuses))
    rss, fds = describe(servers)
    line = (f"soak {args.duration:.0f} s: {load.ops} ops, {lost} lost, {duplicated} duplicated, {double} double-booked, "
            f"{db.broken_chains} broken chains, rss {rss} {'flat' if flat else 'GROWING'}, "
            f"fds {fds}{'' if fds_back else ' NOT BACK'}" + (f", 5xx {errors}" if errors else ""))
    ok = not (lost or duplicated or double or db.broken_chains or errors) and flat and fds_back
    breakdown = ", ".join(f"{name} {status}: {n}" for (name, status), n in sorted(load.statuses.items()))
    print(f"answers: {breakdown}; reservations held {len(load.holds)}", file=sys.stderr)
    for s in servers:
        print(f"descriptors of {s.name}: {s.kinds_start} -> {s.kinds_end}", file=sys.stderr)
    return line, ok


def write_markdown(line: str, args: argparse.Namespace, load_note: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"soak-{dt.date.today().isoformat()}.md"
    command = f".venv/bin/python scripts/bench/soak.py --duration {args.duration:.0f}"
    with path.open("a") as out:
        out.write(f"## {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC — `{command}`\n\n```\n{line}\n```\n\n{load_note}\n\n")
    return path


def run(args: argparse.Namespace) -> int:
    from backend.config import Config
    from backend.embedded_share import services

    data_dir = Path(tempfile.mkdtemp(prefix="soak-"))
    base = dataclasses.replace(Config.from_env({}), instance="")      # embedded servers, whatever the env says
    with services(base, data_dir) as ready:
        assert ready.database_url and ready.redis_url
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "JWT_"))}
        env |= SERVER_ENV | {"DATABASE_URL": ready.database_url, "REDIS_URL": ready.redis_url,
                             "JWT_SECRET": uuid.uuid4().hex * 2, "REDIS_PREFIX": f"soak{uuid.uuid4().hex[:6]}:"}
        python = [sys.executable, str(ROOT / "run.py")]
        subprocess.run([*python, "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([*python, "create-user", "--login", "soak-admin", "--password", PASSWORD, "--role", "admin"],
                       env=env, check=True, stdout=subprocess.DEVNULL)
        made = subprocess.run([*python, "create-app", "--name", "soak"], env=env, check=True, capture_output=True,
                              text=True).stdout
        token = next(line.split(":", 1)[1].strip() for line in made.splitlines() if line.startswith("token:"))
        load_avg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        line, ok = asyncio.run(soak(args, env, data_dir, token))
    shutil.rmtree(data_dir, ignore_errors=True)          # the servers stopped with the block above
    print(line, flush=True)
    if args.markdown:
        note = (f"Two instances, {args.bookers} bookers, {args.drivers} drivers, {args.chats} chats, 2 order clients; "
                f"load average at the start {load_avg} on {os.cpu_count()} CPUs (shared with other work).")
        print(f"written to {write_markdown(line, args, note)}")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60, help="seconds of main load (default 60)")
    parser.add_argument("--warmup", type=float, default=None,
                        help="seconds of warm-up before the descriptor count (default: 10 %% of --duration, ≥ 10)")
    parser.add_argument("--bookers", type=int, default=6)
    parser.add_argument("--drivers", type=int, default=4)
    parser.add_argument("--chats", type=int, default=4)
    parser.add_argument("--markdown", action="store_true", help="append the line to results/soak-<date>.md")
    args = parser.parse_args(argv)
    args.warmup = args.warmup if args.warmup is not None else max(10.0, args.duration / 10)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
