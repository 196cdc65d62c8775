"""What scripts/bench/soak.py checks once its load stopped, and how it watches the servers meanwhile.

The database checks read the soak's own PostgreSQL directly: each is one statement (one snapshot)
and counts violations, so the summary line can say "0 broken chains" rather than "looked fine".
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import psutil

# Waybills whose stored aggregates break SPEC §5.5 over their live records.
BROKEN_WAYBILLS = """
SELECT count(*) FROM passenger_car_waybills w
CROSS JOIN LATERAL (
    SELECT coalesce(sum(fuel_used), 0) AS spent, coalesce(sum(fuel_refueled), 0) AS received,
           coalesce(sum(fuel_used_normal), 0) AS required
    FROM passenger_car_records r WHERE r.waybill_id = w.id AND r.deleted_at IS NULL) a
WHERE w.deleted_at IS NULL AND (
    w.total_spent <> a.spent OR w.total_received <> a.received OR w.required_by_norm <> a.required
    OR w.availability_upon_delivery <> w.upon_issuance + a.received - a.spent
    OR w.savings <> greatest(0, a.required - a.spent) OR w.overrun <> greatest(0, a.spent - a.required))
"""

# Live records that do not start where the car's previous live snapshot ends, or whose own snapshot
# is not where they end (SPEC §5.6: a car's records are a chain).
BROKEN_LINKS = """
WITH s AS (
    SELECT id, odometer, fuel, lag(odometer) OVER w AS prev_odometer, lag(fuel) OVER w AS prev_fuel
    FROM passenger_car_odometer_fuel WHERE deleted_at IS NULL
    WINDOW w AS (PARTITION BY car_id ORDER BY id))
SELECT count(*) FROM passenger_car_records r LEFT JOIN s ON s.id = r.snapshot_id
WHERE r.deleted_at IS NULL AND (s.id IS NULL
    OR r.odometer_before IS DISTINCT FROM s.prev_odometer OR r.fuel_before_departure IS DISTINCT FROM s.prev_fuel
    OR r.odometer_after <> s.odometer OR r.fuel_on_return <> s.fuel)
"""

# Cars whose state disagrees with their bookings (a half-written reservation) or with two active ones.
BOOKING_BREACHES = """
SELECT count(*) FROM (
    SELECT c.id FROM passenger_cars c
    LEFT JOIN bookings b ON b.car_id = c.id AND b.status IN ('reserved', 'in_trip')
    WHERE c.shared GROUP BY c.id, c.state
    HAVING count(b.id) > 1 OR (count(b.id) = 1) <> (c.state IN ('reserved', 'in_trip'))) bad
"""


@dataclass
class Hold:
    """A reservation as its client saw it: from the 201 until it let go (or its reservation ended)."""

    car: int
    since: float
    until: float = float("inf")


def double_booked(holds: list[Hold]) -> int:
    """Reservations of a car a client got while another client still held it."""
    by_car: dict[int, list[Hold]] = {}
    for hold in holds:
        by_car.setdefault(hold.car, []).append(hold)
    clashes = 0
    for same in by_car.values():
        same.sort(key=lambda h: h.since)
        held_until = float("-inf")
        for hold in same:
            clashes += hold.since < held_until
            held_until = max(held_until, hold.until)
    return clashes


@dataclass
class Stored:
    """What the database says after the run."""

    copies: dict[str, int]                     # client_id → messages stored with it
    chat_messages: dict[int, list[int]]        # chat → its message ids in order
    broken_chains: int
    booking_breaches: int


async def stored(database_url: str) -> Stored:
    conn = await asyncpg.connect(database_url)
    try:
        copies = {r["client_id"]: r["n"] for r in await conn.fetch(
            "SELECT client_id, count(*) AS n FROM messages WHERE client_id IS NOT NULL GROUP BY client_id")}
        chats: dict[int, list[int]] = {}
        for row in await conn.fetch("SELECT chat_id, id FROM messages ORDER BY id"):
            chats.setdefault(row["chat_id"], []).append(row["id"])
        broken = await conn.fetchval(BROKEN_WAYBILLS) + await conn.fetchval(BROKEN_LINKS)
        return Stored(copies, chats, broken, await conn.fetchval(BOOKING_BREACHES))
    finally:
        await conn.close()


@dataclass
class Watched:
    """RSS samples and open file descriptors of one server process."""

    name: str
    process: psutil.Process
    database_port: int
    redis_port: int
    rss: list[float] = field(default_factory=list)     # MB, one sample per period of the main load
    fds_start: int = 0
    fds_end: int = 0
    kinds_start: dict[str, int] = field(default_factory=dict)
    kinds_end: dict[str, int] = field(default_factory=dict)

    def kinds(self) -> dict[str, int]:
        """Open descriptors by kind: PostgreSQL and Redis connections (pools), other sockets, the rest."""
        sockets = {"postgres": 0, "redis": 0, "other sockets": 0}
        for conn in self.process.net_connections("all"):
            port = conn.raddr.port if conn.raddr and not isinstance(conn.raddr, str) else None
            key = {self.database_port: "postgres", self.redis_port: "redis"}.get(port or -1, "other sockets")
            sockets[key] += 1
        return {**sockets, "files and pipes": self.fds() - sum(sockets.values())}

    def sample(self) -> None:
        self.rss.append(self.process.memory_info().rss / 2**20)

    def fds(self) -> int:
        return self.process.num_fds()

    def plateau(self) -> tuple[float, float]:
        """Mean RSS of the middle third and of the last third of the run."""
        third = max(1, len(self.rss) // 3)
        return statistics.fmean(self.rss[third:2 * third]), statistics.fmean(self.rss[-third:])

    def flat(self, slack_mb: float, slack_share: float) -> bool:
        middle, last = self.plateau()
        return last - middle <= max(slack_mb, middle * slack_share)

    def fds_back(self, margin: int, postgres_cap: int, redis_growth: int) -> bool:
        """Client sockets, files and pipes back to their start level within `margin`; the pools within
        their bounds. A pool keeps what peak concurrency opened: SQLAlchemy up to DB_POOL_SIZE (it
        closes its overflow) plus the hot asyncpg pool, Redis up to the peak of concurrent commands,
        which the soak's fixed client count bounds — a leak would grow past either."""
        def own(kinds: dict[str, int]) -> int:
            return kinds["other sockets"] + kinds["files and pipes"]
        return (abs(own(self.kinds_end) - own(self.kinds_start)) <= margin
                and self.kinds_end["postgres"] <= postgres_cap
                and self.kinds_end["redis"] - self.kinds_start["redis"] <= redis_growth)


async def watch(servers: list[Watched], stop: asyncio.Event, period: float) -> None:
    """Sample every server's RSS each `period` seconds until `stop`."""
    while not stop.is_set():
        for server in servers:
            server.sample()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), period)


async def settled_fds(server: Watched, quiet: float = 1.0, within: float = 20.0) -> int:
    """The descriptor count once it stopped changing for `quiet` seconds (closing sockets take a moment)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    last, since = server.fds(), loop.time()
    while loop.time() < deadline:
        await asyncio.sleep(0.2)
        now = server.fds()
        if now != last:
            last, since = now, loop.time()
        elif loop.time() - since >= quiet:
            break
    return last


async def settle(server: Watched) -> tuple[int, dict[str, int]]:
    """The settled descriptor count and its breakdown by kind."""
    count = await settled_fds(server)
    return count, server.kinds()


def describe(servers: list[Watched]) -> tuple[str, str]:
    """'A x→y MB, B …' and 'A a→b, B …' for the summary line."""
    rss = ", ".join(f"{s.name} {s.plateau()[0]:.0f}→{s.plateau()[1]:.0f} MB" for s in servers)
    fds = ", ".join(f"{s.name} {s.fds_start}→{s.fds_end}" for s in servers)
    return rss, fds


def unexpected(statuses: dict[tuple[str, int], int]) -> dict[str, Any]:
    """Answers no client of the soak should get: any 5xx."""
    return {f"{name} {status}": n for (name, status), n in statuses.items() if status >= 500}
