#!/usr/bin/env python3
"""REST throughput beside a bare-aiohttp ceiling and a FastAPI peer (issue 11), with wrk.

    .venv/bin/python scripts/bench/rest.py                      # every scenario, 3 targets, 2 rounds of 8 s
    .venv/bin/python scripts/bench/rest.py -s me -s cars -d 5 --rounds 1
    .venv/bin/python scripts/bench/rest.py --project-workers 2  # also a 2-process row (run.py serve --workers)

Needs Debian's wrk (`apt-get install -y wrk`) and, for the FastAPI peer, `.venv/bin/pip install -e '.[bench]'`
(the peer is skipped without it). One PostgreSQL and one Valkey (embedded, in a temporary data dir, unless
DATABASE_URL / REDIS_URL are set) serve all targets; they and wrk run on CPU 1, every server on CPU 0.
The bench seeds users, 200 free cars, chats and waybills in SQL, signs the tokens with the shared
JWT_SECRET, checks that the peers answer the GETs with the project's bodies, then runs each scenario
on each target in turn (rounds alternate targets, so noise hits them all). Per run it prints req/s,
p50/p99, and req/s per server CPU-second (utime + stime of the server's process tree, /proc): the
ratio to the bare ceiling is the figure of merit. Results: scripts/bench/results/rest-<date>.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
from _rest_data import (
    GET_LUA,
    PREFIX_LUA,
    SCENARIOS,
    SUFFIX_LUA,
    USERS,
    Scenario,
    Seed,
    release_bookings,
    seed,
)
from _server import wait_http

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
PEERS = ROOT / "scripts" / "bench" / "peers"
RESULTS = ROOT / "scripts" / "bench" / "results"
PORTS = {"project": 8211, "project-2p": 8212, "baseline": 8213, "bare": 8221, "fastapi": 8231}
SERVER_CPU, CLIENT_CPU = "0", "1"


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` and its children (a multi-process server counts whole)."""
    total = 0.0
    proc = psutil.Process(pid)
    for each in (proc, *proc.children(recursive=True)):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = each.cpu_times()
            total += times.user + times.system
    return total


def fetch(url: str, token: str | None) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


def settle_bookings(database_url: str) -> None:
    """wrk stops mid-cycle and a reservation in flight may still commit: wait, then free them all."""
    time.sleep(0.5)
    asyncio.run(release_bookings(database_url))


def same_bodies(targets: dict[str, int], data: Seed) -> list[str]:
    """Differences between each peer's GET bodies and the project's (the bench compares like with like)."""
    paths = [("/api/cars", None), ("/api/auth/me/", data.tokens[0]),
             (f"/chats/{data.read_chat}/messages?limit=50", data.tokens[0])]
    notes = []
    for path, token in paths:
        want = fetch(f"http://127.0.0.1:{targets['project']}{path}", token)
        for name, port in targets.items():
            if name.startswith("project"):
                continue
            got = fetch(f"http://127.0.0.1:{port}{path}", token)
            if got != want:
                first = next((f"{a!r} vs {b!r}" for a, b in zip(json.dumps(want).split(","),
                                                                  json.dumps(got).split(","), strict=False)
                              if a != b), "length")
                notes.append(f"{name} {path}: body differs from the project's ({first[:200]})")
    return notes


def preflight(targets: dict[str, int], data: Seed) -> list[str]:
    """One request of each write scenario per target: a refusal here would make its row meaningless."""
    notes = []
    for name, port in targets.items():
        for path, body in ((f"/chats/{data.chats[-1]}/messages", {"text": "preflight"}),
                           ("/api/passenger-car-records/", {
                               "passenger_car_waybill": data.waybills[-1], "target": "bench",
                               "departure_time": "08:00:00", "arrival_time": "09:00:00", "distance_city_km": 10,
                               "distance_area_km": 5, "fuel_refueled": "2.000", "fuel_used": "1.500"}),
                           ("/api/bookings", {"car": data.cars[-1]})):
            request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                             headers={"Authorization": f"Bearer {data.tokens[-1]}",
                                                      "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=10) as resp:
                    answer = json.loads(resp.read())
            except urllib.error.HTTPError as err:
                notes.append(f"{name} POST {path}: {err.code} {err.read()[:300]!r}")
                continue
            if path == "/api/bookings":
                cancel = urllib.request.Request(f"http://127.0.0.1:{port}/api/bookings/{answer['id']}/cancel",
                                                data=b"", headers={"Authorization": f"Bearer {data.tokens[-1]}"})
                with urllib.request.urlopen(cancel, timeout=10):
                    pass
    return notes


def run_wrk(port: int, scenario: Scenario, data: Seed, connections: int, seconds: float,
            work: Path) -> dict[str, Any]:
    body = scenario.lua
    if scenario.name == "messages":
        body = GET_LUA.format(path=f"/chats/{data.read_chat}/messages?limit=50", auth="true")
    script = work / f"{scenario.name}.lua"
    script.write_text(data.lua() + PREFIX_LUA + body + SUFFIX_LUA)
    stateful = scenario.name in ("book", "post-message", "record")      # one connection per thread
    threads = connections if stateful else min(connections, 16)
    cmd = ["taskset", "-c", CLIENT_CPU, "wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s",
           "--timeout", "5s", "-s", str(script), f"http://127.0.0.1:{port}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    for line in out.stdout.splitlines():
        if line.startswith("REFUSED "):
            print(f"  {scenario.name} on :{port}: {line[:300]}", flush=True)
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise SystemExit(f"wrk failed: {out.stdout}\n{out.stderr}")


@contextlib.contextmanager
def started(commands: dict[str, list[str]], env: dict[str, str], log_dir: Path) -> Iterator[dict[str, int]]:
    """Every target's server pinned to CPU 0; yields name → pid."""
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, command in commands.items():
            log = (log_dir / f"{name}.log").open("wb")
            cpus = "0,1" if name == "project-2p" else SERVER_CPU    # two workers get both cores
            own = {**env, "PYTHONPATH": str(Path(command[1]).parent)} if name == "baseline" else env
            procs[name] = subprocess.Popen(["taskset", "-c", cpus, *command], env=own,
                                           cwd=Path(command[1]).parent if "run.py" in command[1] else PEERS,
                                           stdout=log, stderr=log)
        for name, proc in procs.items():
            wait_http(f"http://127.0.0.1:{PORTS[name]}/health/live", proc)
        yield {name: proc.pid for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def target_commands(args: argparse.Namespace) -> dict[str, list[str]]:
    python = sys.executable
    commands = {"project": [python, str(ROOT / "run.py"), "serve", "--port", str(PORTS["project"])]}
    if args.project_workers > 1:
        commands["project-2p"] = [python, str(ROOT / "run.py"), "serve", "--port", str(PORTS["project-2p"]),
                                  "--workers", str(args.project_workers)]
    if args.baseline:
        commands["baseline"] = [python, str(Path(args.baseline).resolve() / "run.py"), "serve", "--port",
                                str(PORTS["baseline"])]
    commands["bare"] = [python, str(PEERS / "bare_rest.py"), "--port", str(PORTS["bare"])]
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        print("FastAPI peer skipped: .venv/bin/pip install -e '.[bench]'", file=sys.stderr)
    else:
        commands["fastapi"] = [python, str(PEERS / "fastapi_rest.py"), "--port", str(PORTS["fastapi"])]
    return {name: cmd for name, cmd in commands.items() if name in args.targets or
            (name == "project-2p" and args.project_workers > 1) or name == "baseline"}


Row = dict[str, Any]


def measure(args: argparse.Namespace, pids: dict[str, int], services_pids: dict[str, int], data: Seed,
            database_url: str, work: Path) -> list[Row]:
    rows: list[Row] = []
    for name in args.scenarios:
        scenario = SCENARIOS[name]
        for round_no in range(args.rounds):
            order = list(pids) if round_no % 2 == 0 else list(reversed(pids))
            for target in order:
                if target == "project-2p" and name not in ("me", "live", "cars"):
                    continue
                run_wrk(PORTS[target], scenario, data, args.connections, 1, work)        # warm-up
                if name == "book":
                    settle_bookings(database_url)
                spy = profile(args, pids[target], f"{name}-{target}") if target == "project" else None
                before = cpu_seconds(pids[target])
                services_before = {name: cpu_seconds(pid) for name, pid in services_pids.items()}
                result = run_wrk(PORTS[target], scenario, data, args.connections, args.duration, work)
                cpu = cpu_seconds(pids[target]) - before
                services_cpu = {name: cpu_seconds(pid) - services_before[name] for name, pid in services_pids.items()}
                if spy is not None:
                    spy.wait()
                if name == "book":
                    settle_bookings(database_url)
                rows.append(summarize(target, name, args.connections, result, cpu, services_cpu))
                print(format_row(rows[-1]), flush=True)
    if args.wide:
        for target in pids:
            if target == "project-2p":
                continue
            before = cpu_seconds(pids[target])
            result = run_wrk(PORTS[target], SCENARIOS["me"], data, args.wide, args.duration, work)
            rows.append(summarize(target, "me", args.wide, result, cpu_seconds(pids[target]) - before))
            print(format_row(rows[-1]), flush=True)
    return rows


def profile(args: argparse.Namespace, pid: int, name: str) -> subprocess.Popen[bytes] | None:
    """With --profile DIR: py-spy samples the server during the run (collapsed stacks, on CPU 1)."""
    if not args.profile:
        return None
    out = Path(args.profile) / f"{name}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(["taskset", "-c", CLIENT_CPU, str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--duration",
                             str(max(1, round(args.duration))), "--rate", str(args.profile_rate), "--format", "raw", "--nonblocking",
                             "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarize(target: str, scenario: str, connections: int, result: dict[str, Any], cpu: float,
              services_cpu: dict[str, float] | None = None) -> Row:
    """services_cpu: CPU seconds PostgreSQL ("db") and Valkey ("kv") spent during the run, per request below."""
    seconds = result["duration_us"] / 1e6
    rps = result["requests"] / seconds
    per_request = {f"{name}_ms_per_req": spent * 1000 / max(1, result["requests"])
                   for name, spent in (services_cpu or {}).items()}
    return {**per_request, "target": target, "scenario": scenario, "connections": connections, "rps": rps,
            "p50_ms": result["p50_us"] / 1000, "p99_ms": result["p99_us"] / 1000, "cpu_s": cpu,
            "per_cpu_s": result["requests"] / cpu if cpu > 0 else 0.0, "cpu_ms_per_req": cpu * 1000 / max(1, result["requests"]),
            "timeouts": result["timeout"], "errors": result["connect"] + result["read"] + result["write"],
            "non2xx": result["status"], "5xx": result["5xx"], "booked_per_s": result["booked"] / seconds}


def format_row(row: Row) -> str:
    extra = f"  bookings/s {row['booked_per_s']:.0f}" if row["scenario"] == "book" else ""
    extra += "".join(f"  {name} {row[f'{name}_ms_per_req']:.3f} ms/req" for name in ("db", "kv")
                     if f"{name}_ms_per_req" in row)
    return (f"{row['scenario']:<13} {row['target']:<10} c={row['connections']:<3} {row['rps']:8.0f} req/s  "
            f"p50 {row['p50_ms']:7.2f} ms  p99 {row['p99_ms']:7.2f} ms  {row['per_cpu_s']:7.0f} req/CPU-s  "
            f"{row['cpu_ms_per_req']:.3f} ms CPU/req  timeouts {row['timeouts']}  non-2xx {row['non2xx']}  "
            f"5xx {row['5xx']}{extra}")


def report(args: argparse.Namespace, rows: list[Row], notes: list[str]) -> str:
    """Medians over rounds per (scenario, target, connections), with ratios to bare and to FastAPI."""
    groups: dict[tuple[str, int], dict[str, list[Row]]] = {}
    for row in rows:
        groups.setdefault((row["scenario"], row["connections"]), {}).setdefault(row["target"], []).append(row)

    def med(items: list[Row], key: str) -> float:
        return statistics.median(item[key] for item in items)

    def services_of(items: list[Row]) -> str:
        if not all("db_ms_per_req" in item and "kv_ms_per_req" in item for item in items):
            return "–"
        return f"{med(items, 'db_ms_per_req'):.3f} / {med(items, 'kv_ms_per_req'):.3f}"

    lines = ["| scenario | c | target | req/s | p50 ms | p99 ms | req per server CPU-s | CPU ms/req | × bare | "
             "× FastAPI | PostgreSQL / Valkey CPU ms/req | timeouts / 5xx |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for (scenario, connections), by_target in groups.items():
        bare = med(by_target["bare"], "per_cpu_s") if "bare" in by_target else None
        fast = med(by_target["fastapi"], "per_cpu_s") if "fastapi" in by_target else None
        for target, items in by_target.items():
            per_cpu = med(items, "per_cpu_s")
            title = SCENARIOS[scenario].title
            rps = f"{med(items, 'rps'):,.0f}"
            if scenario == "book":
                rps += f" ({med(items, 'booked_per_s'):,.0f} bookings/s)"
            vs_bare = f"{per_cpu / bare:.2f}" if bare else "–"
            vs_fast = f"{per_cpu / fast:.2f}" if fast else "–"
            lines.append(f"| {title} | {connections} | {target} | {rps} | {med(items, 'p50_ms'):.2f} "
                         f"| {med(items, 'p99_ms'):.2f} | {per_cpu:,.0f} | {med(items, 'cpu_ms_per_req'):.3f} "
                         f"| {vs_bare} | {vs_fast} | {services_of(items)} | {sum(i['timeouts'] for i in items)} / "
                         f"{sum(i['5xx'] for i in items)} |")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = " ".join([".venv/bin/python", "scripts/bench/rest.py", *sys.argv[1:]])
    load = os.getloadavg()
    text = [f"## REST, {stamp}", "", f"`{command}` — servers on CPU 0, wrk + PostgreSQL + Valkey on CPU 1; "
            f"{args.rounds} round(s) of {args.duration} s per target and scenario, alternating targets; medians. "
            f"Load average at the end: {load[0]:.2f} / {load[1]:.2f} (the machine is shared: ratios within this run "
            "count, absolute figures are noisy).", "", *lines, "", *[f"- {note}" for note in notes], "", ""]
    return "\n".join(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-s", "--scenario", dest="scenarios", action="append", choices=list(SCENARIOS))
    parser.add_argument("-t", "--target", dest="targets", action="append", choices=["project", "bare", "fastapi"])
    parser.add_argument("-d", "--duration", type=float, default=8)
    parser.add_argument("-c", "--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--wide", type=int, default=128, help="connections of the final GET /api/auth/me/ run (0: none)")
    parser.add_argument("--project-workers", type=int, default=0, help="also run `run.py serve --workers N`")
    parser.add_argument("--baseline", metavar="DIR", help="also run another checkout's run.py, e.g. "
                        "`git archive HEAD | tar -x -C /tmp/head` (before/after in one run)")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument("--profile", metavar="DIR", help="py-spy the project's runs into DIR (pip install py-spy)")
    parser.add_argument("--profile-rate", type=int, default=200, help="py-spy samples per second")
    args = parser.parse_args()
    args.scenarios = args.scenarios or list(SCENARIOS)
    args.targets = args.targets or ["project", "bare", "fastapi"]
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk (Debian/Ubuntu)")
    if args.connections > USERS:
        raise SystemExit(f"at most {USERS} connections (one seeded user per connection)")
    from backend.config import Config
    from backend.embedded_share import services

    secret = os.environ.get("JWT_SECRET") or uuid.uuid4().hex * 2
    work = Path(tempfile.mkdtemp(prefix="rest-bench-"))
    base = dataclasses.replace(Config.from_env(), instance="")
    with services(base, work / "data") as ready:
        assert ready.database_url and ready.redis_url
        services_pids = pin_services(ready.redis_url, work / "data")
        env = {**os.environ, "DATABASE_URL": ready.database_url, "REDIS_URL": ready.redis_url, "JWT_SECRET": secret,
               "LOG_LEVEL": "INFO", "REDIS_PREFIX": f"bench{uuid.uuid4().hex[:6]}:", "PYTHONPATH": str(ROOT)}
        subprocess.run([sys.executable, str(ROOT / "run.py"), "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
        data = asyncio.run(seed(ready.database_url, secret))
        commands = target_commands(args)
        with started(commands, env, work) as pids:
            ports = {name: PORTS[name] for name in pids}
            notes = same_bodies(ports, data) + preflight(ports, data)
            for note in notes:
                print("note:", note, flush=True)
            rows = measure(args, pids, services_pids, data, ready.database_url, work)
    text = report(args, rows, notes)
    print(text)
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        with (RESULTS / f"rest-{dt.date.today().isoformat()}.md").open("a") as out:
            out.write(text)
    shutil.rmtree(work, ignore_errors=True)


def pin_services(redis_url: str, data_dir: Path) -> dict[str, int]:
    """PostgreSQL (before any backend forks) and Valkey share CPU 1 with wrk; servers own CPU 0.

    Returns the pids found ("db": the postmaster, "kv": Valkey), whose CPU each run also reports."""
    import redis

    pids: dict[str, int] = {}
    client = redis.Redis.from_url(redis_url)
    with contextlib.suppress(Exception):
        pids["kv"] = int(client.info("server")["process_id"])
        os.sched_setaffinity(pids["kv"], {int(CLIENT_CPU)})
    client.close()
    with contextlib.suppress(OSError, ValueError, IndexError):
        postmaster = int((data_dir / "pg" / "postmaster.pid").read_text().splitlines()[0])
        pids["db"] = postmaster
        for proc in (psutil.Process(postmaster), *psutil.Process(postmaster).children(recursive=True)):
            with contextlib.suppress(psutil.Error, OSError):
                os.sched_setaffinity(proc.pid, {int(CLIENT_CPU)})
    return pids


if __name__ == "__main__":
    main()
