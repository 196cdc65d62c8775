#!/usr/bin/env python3
"""Auth throughput: GET /api/auth/me/ with a bearer token and with a cookie session, and the event
loop's health while 50 argon2id logins run at once.

    .venv/bin/python scripts/bench/auth.py                          # starts `run.py serve` itself
    .venv/bin/python scripts/bench/auth.py --url http://127.0.0.1:8080 --user LOGIN:PASSWORD

Without --url it starts `run.py serve` on a free port with a temporary --data-dir (embedded
PostgreSQL and Valkey unless DATABASE_URL / REDIS_URL are set) and creates the user with
`run.py create-user`, so passwords use the production argon2id parameters. The last figure is the
p99 of GET /health/live probed every 10 ms while 50 logins hash at once: it must stay under 50 ms
(hashing runs in a thread pool, never on the loop, SPEC §2.2). Exit code 1 if it does not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from _server import served

LIVE_LIMIT_MS = 50.0


def server(data_dir: Path) -> contextlib.AbstractAsyncContextManager[tuple[str, str]]:
    """`run.py serve` with a fresh driver; yields (base URL, "login:password")."""
    return served(data_dir, "driver")


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def hammer(call: Callable[[], Awaitable[int]], workers: int, seconds: float) -> tuple[float, list[float]]:
    """Run `call` from `workers` concurrent loops for `seconds`; returns (requests/s, latencies ms)."""
    latencies: list[float] = []
    stop = time.monotonic() + seconds

    async def worker() -> None:
        while time.monotonic() < stop:
            started = time.perf_counter()
            status = await call()
            if status != 200:
                raise SystemExit(f"unexpected status {status}")
            latencies.append((time.perf_counter() - started) * 1000)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return len(latencies) / (time.perf_counter() - began), latencies


def report(name: str, rps: float, latencies: list[float]) -> None:
    print(f"{name:<34} {rps:9.0f} req/s   p50 {statistics.median(latencies):6.2f} ms"
          f"   p99 {percentile(latencies, 0.99):6.2f} ms   n={len(latencies)}")


async def bench(url: str, login: str, password: str, workers: int, seconds: float, logins: int) -> int:
    connector = aiohttp.TCPConnector(limit=max(workers, logins) + 10)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.post(url + "/api/auth/login/", json={"login": login, "password": password}) as resp:
            if resp.status != 200:
                raise SystemExit(f"login failed: {resp.status} {await resp.text()}")
            token = (await resp.json())["access"]
        async with session.post(url + "/profile/signin", json={"login": login, "password": password}) as resp:
            if resp.status != 200:
                raise SystemExit(f"sign-in failed: {resp.status} {await resp.text()}")
            cookie = resp.cookies["sessid"].value
        bearer = {"Authorization": f"Bearer {token}"}
        cookies = {"Cookie": f"sessid={cookie}"}
        # A jar would add the cookie to the bearer run too: send both explicitly.
        session.cookie_jar.clear()

        async def me(headers: dict[str, str]) -> int:
            async with session.get(url + "/api/auth/me/", headers=headers) as resp:
                await resp.read()
                return resp.status

        print(f"{workers} concurrent clients, {seconds:.0f} s each, against {url}")
        await hammer(lambda: me(bearer), workers, 1.0)          # warm the pools
        report("GET /api/auth/me/ (bearer)", *await hammer(lambda: me(bearer), workers, seconds))
        report("GET /api/auth/me/ (sessid cookie)", *await hammer(lambda: me(cookies), workers, seconds))

        probes: list[float] = []
        done = asyncio.Event()

        async def probe() -> None:
            while not done.is_set():
                started = time.perf_counter()
                async with session.get(url + "/health/live") as resp:
                    await resp.read()
                probes.append((time.perf_counter() - started) * 1000)
                await asyncio.sleep(0.01)

        async def one_login() -> float:
            started = time.perf_counter()
            async with session.post(url + "/api/auth/login/", json={"login": login, "password": password}) as resp:
                await resp.read()
                if resp.status != 200:
                    raise SystemExit(f"login failed during the burst: {resp.status}")
            return (time.perf_counter() - started) * 1000

        prober = asyncio.create_task(probe())
        await asyncio.sleep(0.2)
        began = time.perf_counter()
        login_times = await asyncio.gather(*(one_login() for _ in range(logins)))
        burst = time.perf_counter() - began
        done.set()
        await prober
        print(f"{logins} concurrent logins (argon2id)        {burst:6.2f} s total, login p50 "
              f"{statistics.median(login_times):.0f} ms, p99 {percentile(login_times, 0.99):.0f} ms")
        live_p99 = percentile(probes, 0.99)
        print(f"GET /health/live during the logins  p50 {statistics.median(probes):6.2f} ms   "
              f"p99 {live_p99:6.2f} ms   max {max(probes):6.2f} ms   n={len(probes)}   "
              f"({'OK' if live_p99 < LIVE_LIMIT_MS else 'FAIL'}: limit {LIVE_LIMIT_MS:.0f} ms)")
        return 0 if live_p99 < LIVE_LIMIT_MS else 1


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an already running server (default: start run.py serve)")
    parser.add_argument("--user", help="LOGIN:PASSWORD of an existing user (with --url)")
    parser.add_argument("--workers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--logins", type=int, default=50)
    args = parser.parse_args()
    if args.url:
        if not args.user:
            raise SystemExit("--url needs --user LOGIN:PASSWORD")
        login, _, password = args.user.partition(":")
        return await bench(args.url.rstrip("/"), login, password, args.workers, args.seconds, args.logins)
    with tempfile.TemporaryDirectory(prefix="bench-auth-") as tmp:
        async with server(Path(tmp)) as (url, user):
            login, _, password = user.partition(":")
            return await bench(url, login, password, args.workers, args.seconds, args.logins)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
