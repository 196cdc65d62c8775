"""Real `run.py serve` processes for the fault tests, and the invariants checked after a fault.

The invariants read the database in one statement each (one snapshot), so a sweeper running at
the same time can never make a consistent state look broken or a broken one look consistent.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import aiohttp
import psutil
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.config import Config
from backend.db import read
from backend.embedded import free_port
from tests.services import wait_ready

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Instance:
    """One started `run.py serve`."""

    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"{self.url}/ws"


def serve(config: Config, port: int, **env: object) -> subprocess.Popen[bytes]:
    """`run.py serve` on the test's database, Redis, key prefix and signing key; `env` overrides."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "JWT_"))}
    base |= {"DATABASE_URL": config.database_url or "", "REDIS_URL": config.redis_url or "",
             "REDIS_PREFIX": config.redis_prefix, "LOG_LEVEL": "ERROR",
             "JWT_SECRETS": ",".join(f"{kid}:{secret}" for kid, secret in config.jwt_keys),
             # Small pools: three instances on a shared test server, each with its two pools.
             "DB_POOL_SIZE": "5", "DB_MAX_OVERFLOW": "5"}
    base |= {name: str(value) for name, value in env.items()}
    return subprocess.Popen([sys.executable, str(ROOT / "run.py"), "serve", "--port", str(port)], cwd=ROOT,
                            env=base, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@contextlib.asynccontextmanager
async def instances(config: Config, count: int, **env: object) -> AsyncIterator[list[Instance]]:
    """`count` instances started at once and ready; every one still alive is killed at the end."""
    started = [Instance(port, serve(config, port, **env)) for port in (free_port() for _ in range(count))]
    try:
        await asyncio.gather(*(wait_ready(one.port, one.proc) for one in started))
        yield started
    finally:
        for one in started:
            if one.proc.poll() is None:
                one.proc.kill()
            await asyncio.to_thread(one.proc.wait, 10)


async def backends_in_transaction(engine: AsyncEngine, pid: int, database_url: str) -> int:
    """How many PostgreSQL backends of process `pid` are inside a transaction right now."""
    pg_port = urlparse(database_url).port
    ports = [c.laddr.port for c in psutil.Process(pid).net_connections("tcp")
             if c.raddr and c.raddr.port == pg_port]
    if not ports:
        return 0
    async with read(engine) as conn:
        return int((await conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE client_port = ANY(:ports) AND xact_start IS NOT NULL"
            " AND pid <> pg_backend_pid()"), {"ports": ports})).scalar_one())


@dataclass
class Hold:
    """A reservation as its client saw it: from the 201 to the moment it let go (or its expiry)."""

    car: int
    booking: int
    since: float
    until: float = float("inf")


def overlapping_holds(holds: list[Hold]) -> list[tuple[Hold, Hold]]:
    """Pairs of reservations of one car that two clients held at the same time (a double booking)."""
    clashes = []
    by_car: dict[int, list[Hold]] = {}
    for hold in holds:
        by_car.setdefault(hold.car, []).append(hold)
    for same in by_car.values():
        same.sort(key=lambda h: h.since)
        clashes += [(a, b) for a, b in itertools.pairwise(same) if b.since < a.until]
    return clashes


async def booking_breaches(engine: AsyncEngine) -> list[dict[str, Any]]:
    """Cars whose state disagrees with their bookings: busy with no active booking, free with one,
    or with more than one active booking (a half-written or doubled reservation)."""
    async with read(engine) as conn:
        rows = (await conn.execute(text("""
            SELECT c.id, c.state, count(b.id) AS active
            FROM passenger_cars c LEFT JOIN bookings b ON b.car_id = c.id AND b.status IN ('reserved', 'in_trip')
            WHERE c.shared GROUP BY c.id, c.state
            HAVING count(b.id) > 1 OR (count(b.id) = 1) <> (c.state IN ('reserved', 'in_trip'))"""))).mappings()
        return [dict(row) for row in rows]


async def chat_breaches(engine: AsyncEngine) -> list[dict[str, Any]]:
    """Chats whose `last_message_id` is not their newest message (a message written without the chat
    row of the same transaction, or the other way round)."""
    async with read(engine) as conn:
        rows = (await conn.execute(text("""
            SELECT c.id, c.last_message_id, max(m.id) AS newest
            FROM chats c LEFT JOIN messages m ON m.chat_id = c.id GROUP BY c.id
            HAVING c.last_message_id IS DISTINCT FROM max(m.id)"""))).mappings()
        return [dict(row) for row in rows]


async def order_breaches(engine: AsyncEngine) -> list[dict[str, Any]]:
    """Orders whose status is not the target of their latest stored transition."""
    async with read(engine) as conn:
        rows = (await conn.execute(text("""
            SELECT o.id, o.status, t.to_status FROM call_orders o
            LEFT JOIN LATERAL (SELECT to_status FROM call_order_transitions WHERE order_id = o.id
                               ORDER BY id DESC LIMIT 1) t ON true
            WHERE t.to_status IS DISTINCT FROM o.status"""))).mappings()
        return [dict(row) for row in rows]


async def statuses(engine: AsyncEngine, table: str) -> dict[str, int]:
    """Rows of `table` counted by status."""
    async with read(engine) as conn:
        rows = await conn.execute(text(f"SELECT status, count(*) FROM {table} GROUP BY status"))
        return {status: int(count) for status, count in rows}


async def client_ids_stored(engine: AsyncEngine) -> dict[str, int]:
    """How many times each `client_id` was stored."""
    async with read(engine) as conn:
        rows = await conn.execute(text("SELECT client_id, count(*) FROM messages WHERE client_id IS NOT NULL"
                                       " GROUP BY client_id"))
        return {client_id: int(count) for client_id, count in rows}


@dataclass
class Api:
    """Bearer-authenticated JSON calls to whichever instance `url` names."""

    http: aiohttp.ClientSession
    headers: dict[str, str] = field(default_factory=dict)

    async def call(self, method: str, url: str, body: Any = None, expect: int | tuple[int, ...] = (200, 201),
                   **kwargs: Any) -> Any:
        async with self.http.request(method, url, json=body, headers=self.headers, **kwargs) as resp:
            data = await resp.json() if resp.status != 204 else None
            wanted = expect if isinstance(expect, tuple) else (expect,)
            assert resp.status in wanted, (method, url, resp.status, data)
            return data


async def shared_car(admin: Api, url: str) -> int:
    """A bookable car made through the fleet API."""
    car = await admin.call("POST", f"{url}/api/passenger-cars/", {
        "number": f"F{uuid.uuid4().hex[:7]}", "brand": "Lada", "model": "Vesta", "shared": True,
        "lat": "55.030199", "lon": "82.920430", "fuel_level": "40", "tariff_per_minute": "7.5"}, expect=201)
    return int(car["id"])


async def fleet_car(admin: Api, url: str) -> int:
    """A passenger car with a summer norm and a first snapshot, ready for waybills."""
    car = int((await admin.call("POST", f"{url}/api/passenger-cars/", {"number": f"W{uuid.uuid4().hex[:7]}"},
                                expect=201))["id"])
    await admin.call("POST", f"{url}/api/passenger-car-norms/", {
        "car": car, "season": "summer", "city_norm": "0.090", "area_norm": "0.110", "date": "2024-09-01"}, expect=201)
    await admin.call("POST", f"{url}/api/passenger-car-odometer-fuel/", {
        "car": car, "odometer": 100000, "fuel": "40.000", "date": "2024-09-01"}, expect=201)
    return car


async def waybill(admin: Api, url: str, car: int, driver: int) -> int:
    return int((await admin.call("POST", f"{url}/api/passenger-car-waybills/", {
        "car": car, "driver": driver, "date": "2024-09-15", "norm_season": "summer"}, expect=201))["id"])


RECORD = {"target": "fault", "departure_time": "08:00:00", "arrival_time": "09:00:00", "distance_city_km": 10,
          "distance_area_km": 5, "fuel_refueled": "2.000", "fuel_used": "1.500"}


@dataclass
class Outcome:
    """One answered request of a fault test's traffic."""

    method: str
    path: str
    status: int
    body: Any
    request_id: str


def out_of_style(outcome: Outcome, codes: set[str]) -> str | None:
    """Why an error answer breaks SPEC §2.3 (a 500, the wrong body style for its surface, a code not in
    `codes`, no request id), or None when it is a proper error of its surface."""
    path, body = outcome.path, outcome.body
    if outcome.status >= 500 and outcome.status != 503:
        return f"{outcome.status} on {outcome.method} {path}: {body}"
    if not outcome.request_id:
        return f"no X-Request-ID on {outcome.method} {path}"
    if outcome.status != 503:
        return None
    if path.startswith("/v1"):
        ok = isinstance(body, dict) and body.get("data") is None and [set(e) for e in body.get("errors", [])] == [
            {"message", "code"}]
        code = body["errors"][0]["code"] if ok else None
    elif path.startswith(("/api", "/profile", "/sign-in", "/auth")):
        ok = isinstance(body, dict) and set(body) == {"detail", "code"}
        code = body["code"] if ok else None
    else:                                   # the messenger's paths
        ok = isinstance(body, dict) and set(body) == {"error", "message"}
        code = body["error"] if ok else None
    if not ok:
        return f"503 of {outcome.method} {path} not in its surface's style: {body}"
    return None if code in codes else f"503 of {outcome.method} {path} with code {code}"


async def fire(http: aiohttp.ClientSession, method: str, url: str, path: str, **kwargs: Any) -> Outcome:
    """One request; its outcome whatever the status (the body as JSON, or as text when it is not)."""
    async with http.request(method, url + path, **kwargs) as resp:
        raw = await resp.text()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        return Outcome(method, path, resp.status, body, resp.headers.get("X-Request-ID", ""))
