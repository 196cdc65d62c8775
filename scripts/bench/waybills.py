#!/usr/bin/env python3
"""Waybill record throughput: records/s for 50 concurrent drivers on 50 cars and on one shared car.

Every record is a POST /api/passenger-car-records/ that locks its car, reads the norm and the last
snapshot, writes a snapshot and the record and re-sums the waybill (SPEC §5.6). On 50 cars the
writers run in parallel; on one shared car the car lock serializes them, which is the cost of a
gap-free odometer chain.

    .venv/bin/python scripts/bench/waybills.py                     # starts `run.py serve` itself
    .venv/bin/python scripts/bench/waybills.py --url http://127.0.0.1:8080 --admin LOGIN:PASSWORD
    .venv/bin/python scripts/bench/waybills.py --markdown    # + scripts/bench/results/waybills-<date>.md

Without --url it starts `run.py serve` on a free port with a temporary --data-dir (embedded
PostgreSQL and Valkey unless DATABASE_URL / REDIS_URL are set) and creates the admin with
`run.py create-user`. Users, cars, norms, snapshots and waybills are all made through the API.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import shlex
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from _server import PASSWORD, served

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "scripts" / "bench" / "results"


def server(data_dir: Path) -> contextlib.AbstractAsyncContextManager[tuple[str, str]]:
    """`run.py serve` with a fresh admin; yields (base URL, "login:password")."""
    return served(data_dir, "admin")


class Client:
    """One signed-in user over a shared session."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str = "") -> None:
        self.session, self.url, self.token = session, url, token

    async def call(self, method: str, path: str, body: Any = None, expect: int = 200, **params: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with self.session.request(method, self.url + path, json=body, params=params or None,
                                        headers=headers) as resp:
            data = await resp.json() if resp.status != 204 else None
            if resp.status != expect:
                raise RuntimeError(f"{method} {path} -> {resp.status} {data}")
            return data

    async def login(self, login: str, password: str) -> Client:
        data = await self.call("POST", "/api/auth/login/", {"login": login, "password": password, "client": "web"})
        return Client(self.session, self.url, data["access"])


async def make_drivers(admin: Client, count: int) -> list[tuple[int, Client]]:
    roles = await admin.call("GET", "/api/roles/", limit=500)
    driver_role = next(r["id"] for r in roles["results"] if r["name"] == "driver")
    tag = uuid.uuid4().hex[:6]

    async def one(i: int) -> tuple[int, Client]:
        login = f"bench-{tag}-{i}"
        user = await admin.call("POST", "/api/users/", {"login": login, "password": PASSWORD, "role": driver_role,
                                                        "name": "Bench", "surname": str(i)}, expect=201)
        return user["id"], await admin.login(login, PASSWORD)

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def make_car(admin: Client) -> int:
    car = await admin.call("POST", "/api/passenger-cars/", {"number": f"B{uuid.uuid4().hex[:8]}"}, expect=201)
    await admin.call("POST", "/api/passenger-car-norms/", {"car": car["id"], "season": "summer", "city_norm": "0.090",
                                                          "area_norm": "0.110", "date": "2024-09-01"}, expect=201)
    await admin.call("POST", "/api/passenger-car-odometer-fuel/", {"car": car["id"], "odometer": 100000,
                                                                  "fuel": "40.000", "date": "2024-09-01"}, expect=201)
    return int(car["id"])


async def scenario(admin: Client, drivers: list[tuple[int, Client]], cars: list[int], per_driver: int) -> dict:
    """Each driver posts `per_driver` records in a row on its own waybill; all drivers at once."""
    waybills = await asyncio.gather(*(
        admin.call("POST", "/api/passenger-car-waybills/", {"car": cars[i % len(cars)], "driver": uid,
                                                            "date": "2024-09-15", "norm_season": "summer"},
                   expect=201) for i, (uid, _) in enumerate(drivers)))
    latencies: list[float] = []

    async def drive(client: Client, waybill: int) -> None:
        for _ in range(per_driver):
            body = {"passenger_car_waybill": waybill, "target": "bench", "departure_time": "08:00:00",
                    "arrival_time": "09:00:00", "distance_city_km": 10, "distance_area_km": 5,
                    "fuel_refueled": "2.000", "fuel_used": "1.500"}
            began = time.perf_counter()
            await client.call("POST", "/api/passenger-car-records/", body, expect=201)
            latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(drive(client, w["id"]) for (_, client), w in zip(drivers, waybills, strict=True)))
    elapsed = time.perf_counter() - began
    total = len(drivers) * per_driver
    for car in cars:   # the chain must be gap-free: 15 km per record
        last = await admin.call("GET", "/api/passenger-car-odometer-fuel/last/", car=car)
        expected = 100000 + 15 * per_driver * sum(1 for i in range(len(drivers)) if cars[i % len(cars)] == car)
        assert last["odometer"] == expected, (car, last, expected)
    return summary(total, elapsed, latencies)


Results = list[tuple[str, dict]]


async def bench(url: str, admin_credentials: str, drivers: int, per_driver: int) -> Results:
    login, _, password = admin_credentials.partition(":")
    results: Results = []
    connector = aiohttp.TCPConnector(limit=drivers * 2)
    async with aiohttp.ClientSession(connector=connector) as session:
        admin = await Client(session, url).login(login, password)
        crew = await make_drivers(admin, drivers)
        many = [await make_car(admin) for _ in range(drivers)]
        shared = [await make_car(admin)]
        for name, cars in ((f"{drivers} drivers on {drivers} cars", many), (f"{drivers} drivers on one car", shared)):
            result = await scenario(admin, crew, cars, per_driver)
            print(f"{name:32} {result}", flush=True)
            results.append((name, result))
    return results


async def bench_domain(drivers: int, per_driver: int) -> Results:
    """The same two scenarios through backend.fleet.records.create_record: the database-bound part of a
    POST without HTTP, JSON or authentication (runs before any user exists; embedded PostgreSQL)."""
    from decimal import Decimal

    from sqlalchemy import insert, select

    from backend.auth.tables import roles, users
    from backend.db import make_engine, make_hot_pool, transaction
    from backend.embedded import EmbeddedPostgres
    from backend.fleet import issuance, records
    from backend.fleet.kinds import PASSENGER as K
    from backend.fleet.snapshots import lock_car
    from backend.migrations import migrate
    from backend.principal import Principal

    results: Results = []

    with tempfile.TemporaryDirectory(prefix="bench-waybills-") as tmp:
        postgres = None if os.environ.get("DATABASE_URL") else EmbeddedPostgres(Path(tmp) / "pg")
        url = os.environ.get("DATABASE_URL") or postgres.start()  # type: ignore[union-attr]
        try:
            await migrate(url)
            engine = make_engine(url, pool_size=drivers, max_overflow=0)
            pool = await make_hot_pool(url, max_size=drivers)      # create_record runs on the raw pool

            async def add(table: Any, **values: Any) -> int:
                async with transaction(engine) as conn:
                    return (await conn.execute(insert(table).values(**values).returning(table.c.id))).scalar_one()

            async with transaction(engine) as conn:
                role = (await conn.execute(select(roles.c.id).where(roles.c.name == "driver"))).scalar_one()
            tag = uuid.uuid4().hex[:6]
            crew = [await add(users, login=f"bench-{tag}-{i}", username=f"bench-{tag}-{i}", password_hash="-", role_id=role)
                    for i in range(drivers)]

            async def car() -> int:
                car_id = await add(K.cars, number=f"B{uuid.uuid4().hex[:8]}")
                await add(K.norms, car_id=car_id, season="summer", city_norm=Decimal("0.09"),
                          area_norm=Decimal("0.11"), date=dt.date(2024, 9, 1))
                await add(K.snapshots, car_id=car_id, odometer=100000, fuel=Decimal(40), date=dt.date(2024, 9, 1))
                return car_id

            for name, cars in ((f"{drivers} drivers on {drivers} cars", [await car() for _ in range(drivers)]),
                               (f"{drivers} drivers on one car", [await car()])):
                async def waybill(car_id: int, uid: int) -> int:
                    async with transaction(engine) as conn:   # as WaybillResource issues one
                        await lock_car(conn, K, car_id)
                        issued = await issuance.issue(conn, K, car_id)
                        assert issued is not None
                        return (await conn.execute(insert(K.waybills).values(
                            car_id=car_id, driver_id=uid, date=dt.date(2024, 9, 15), norm_season="summer",
                            **issued).returning(K.waybills.c.id))).scalar_one()

                waybills = [await waybill(cars[i % len(cars)], uid) for i, uid in enumerate(crew)]
                latencies: list[float] = []

                async def drive(uid: int, waybill: int, latencies: list[float]) -> None:
                    who = Principal(user_id=uid, permissions=frozenset({K.create_flag}))
                    for _ in range(per_driver):
                        began = time.perf_counter()
                        await records.create_record(pool, K, who, {
                            "waybill_id": waybill, "target": "bench", "departure_time": dt.time(8),
                            "arrival_time": dt.time(9), "distance_city_km": 10, "distance_area_km": 5,
                            "fuel_refueled": Decimal(2), "fuel_used": Decimal("1.5")})
                        latencies.append(time.perf_counter() - began)

                began = time.perf_counter()
                await asyncio.gather(*(drive(uid, w, latencies) for uid, w in zip(crew, waybills, strict=True)))
                elapsed = time.perf_counter() - began
                result = summary(len(latencies), elapsed, latencies)
                print(f"{name:32} {result}", flush=True)
                results.append((name, result))
            await engine.dispose()
            await pool.close()
        finally:
            if postgres is not None:
                postgres.stop()
    return results


def summary(total: int, elapsed: float, latencies: list[float]) -> dict:
    latencies.sort()
    return {"records": total, "seconds": round(elapsed, 2), "records_per_s": round(total / elapsed, 1),
            "p50_ms": round(statistics.median(latencies) * 1000, 1),
            "p99_ms": round(latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000, 1)}


def command_line() -> str:
    """The command as typed, for the results file; the --admin password is masked."""
    python = Path(sys.executable)
    args = [str(python.relative_to(ROOT)) if python.is_relative_to(ROOT) else str(python)]
    masked = False
    for arg in sys.argv:
        if masked:
            arg, masked = arg.partition(":")[0] + ":***", False
        elif arg == "--admin":
            masked = True
        elif arg.startswith("--admin="):
            arg = arg.partition(":")[0] + ":***"
        args.append(arg)
    return shlex.join(args)


def write_markdown(path: Path, mode: str, drivers: int, per_driver: int, load: str, results: Results) -> None:
    """Append one run to `path`: date, command, conditions and a table of the scenarios."""
    now = dt.datetime.now(dt.UTC)
    lines = [f"## waybills, {now:%Y-%m-%d %H:%M} UTC", "",
             f"`{command_line()}`", "",
             f"{mode}; {drivers} drivers, {per_driver} records each, every record a POST of SPEC §5.6 "
             f"in its own transaction. Host: {os.cpu_count()} CPUs, /proc/loadavg before the run: `{load}`.", "",
             "| scenario | records | seconds | records/s | p50 ms | p99 ms |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {name} | {r['records']} | {r['seconds']} | {r['records_per_s']} | {r['p50_ms']} | {r['p99_ms']} |"
              for name, r in results]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n\n")
    print(f"appended to {path}")


def load_average() -> str:
    with contextlib.suppress(OSError):
        return Path("/proc/loadavg").read_text().strip()
    return "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running server (default: start run.py serve)")
    parser.add_argument("--admin", help="LOGIN:PASSWORD of an admin on --url")
    parser.add_argument("--drivers", type=int, default=50)
    parser.add_argument("--records", type=int, default=20, help="records per driver")
    parser.add_argument("--domain", action="store_true",
                        help="call backend.fleet.records directly (no HTTP, no auth) on an embedded PostgreSQL")
    parser.add_argument("--markdown", nargs="?", type=Path, const=RESULTS / f"waybills-{dt.date.today()}.md",
                        metavar="FILE", help="also append a Markdown summary with the command and the date "
                        "(default FILE: scripts/bench/results/waybills-<today>.md)")
    args = parser.parse_args()
    if args.url and not args.admin:
        parser.error("--url needs --admin LOGIN:PASSWORD")
    load = load_average()
    if args.domain:
        sys.path.insert(0, str(ROOT))
        mode = "backend.fleet.records.create_record called directly (no HTTP, no auth), embedded PostgreSQL"
        results = asyncio.run(bench_domain(args.drivers, args.records))
    elif args.url:
        mode = f"HTTP against {args.url}"
        results = asyncio.run(bench(args.url, args.admin, args.drivers, args.records))
    else:
        async def with_server() -> Results:
            with tempfile.TemporaryDirectory(prefix="bench-waybills-") as tmp:
                async with server(Path(os.environ.get("BENCH_DATA_DIR", tmp))) as (url, admin):
                    return await bench(url, admin, args.drivers, args.records)

        mode = ("HTTP against one `run.py serve` process started by the script (embedded PostgreSQL and "
                "Valkey on a temporary --data-dir), client on the same host")
        results = asyncio.run(with_server())
    if args.markdown:
        write_markdown(args.markdown, mode, args.drivers, args.records, load, results)


if __name__ == "__main__":
    main()
