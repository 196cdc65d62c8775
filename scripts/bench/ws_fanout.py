#!/usr/bin/env python3
"""Websocket fan-out benchmark of /ws (issue 4), on the shared harness so figures sit beside the peers'.

    .venv/bin/python scripts/bench/ws_fanout.py                     # N = 1000, 5000, 10000
    .venv/bin/python scripts/bench/ws_fanout.py -n 10000 --peer rawframe
    .venv/bin/python scripts/bench/ws_fanout.py -n 10000 --streams --recovery 200   # SPEC §12.5 figures
    .venv/bin/python scripts/bench/ws_fanout.py -n 2000 --cluster   # one Redis beside a 3-master cluster (§13.1)

It starts PostgreSQL and Redis (embedded ones unless DATABASE_URL / REDIS_URL are set; Redis
is pinned to CPU 1), creates an admin, then two instances of the real app: A (measured) pinned
to CPU 0 and B (publisher) on CPU 1. It runs `../shared/bench/ws_fanout.py --target project`
(SPEC §8.2 subscribe, §3.2 login, §8.5 publish through B) with the standard matrix arguments,
appends the raw JSON lines to scripts/bench/results/runs-DATE.jsonl and writes a markdown
table to scripts/bench/results/ws-fanout-DATE.md. `--peer MODE` also runs the bare-aiohttp peer
(`peers/aiohttp_bare.py --mode MODE`) on the same Redis, the same way, for a side-by-side row.

The harness subscribes anonymously to `cars`, the app's own public channel, so every
subscription also reads the free-cars snapshot, as a real client's would; with `--auth` every
project socket carries one user's bearer (the whole upgrade auth path per connection). Each
target runs on fresh instances: KB/conn is RSS growth from before the first connect.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _server import wait_http

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
HARNESS_DIR = ROOT.parent / "shared" / "bench"
RESULTS = ROOT / "scripts" / "bench" / "results"
ADMIN_LOGIN, ADMIN_PASSWORD = "bench_admin", "bench-admin-password-1"
USER_LOGIN, USER_PASSWORD = "bench_user", "bench-user-password-1"     # --auth: every socket's bearer
PORT_A, PORT_B = 8080, 8081
PEER_A, PEER_B = 8101, 8102
STREAM_CHANNEL, PLAIN_CHANNEL = "bench", "benchplain"
RECOVERED = 100             # events missed by each recovering subscriber (SPEC §12.5)
STANDARD = ["-w", "2", "-m", "100", "--rate", "5", "--burst-events", "50", "--idle-timeout", "5",
            "--max-drain", "120", "--settle", "2"]


def serve(port: int) -> None:
    """One instance of the real app, as `run.py serve` builds it (uvloop, create_app, run_app)."""
    import asyncio

    import uvloop
    from aiohttp import web

    from backend import keys
    from backend.app import create_app, freeze_startup_heap
    from backend.config import Config
    from backend.realtime.channels import ANY_REST, Namespace

    async def anyone(db: Any, principal: Any, rest: str) -> bool:
        return True

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    app = create_app(Config.from_env())
    # Two public channels alike but for SPEC §12: `bench` is a stream (offsets, history), `benchplain`
    # the plain fan-out of §8 — the same build, measured side by side (SPEC §12.5).
    app[keys.CHANNELS].add(Namespace(STREAM_CHANNEL, authorize=anyone))
    app[keys.CHANNELS].add(Namespace(PLAIN_CHANNEL, authorize=anyone, stream=False))
    # `--cluster`: 8 stream channels `benchc:<k>` spread over the cluster's shards (_cluster.py).
    app[keys.CHANNELS].add(Namespace("benchc", authorize=anyone, rest=ANY_REST))
    app.on_startup.append(freeze_startup_heap)          # as run.py serve does (backend.serving)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, backlog=1024, print=None, shutdown_timeout=5)


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else min(65536, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))


@contextlib.contextmanager
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Started children, stopped (SIGTERM, then SIGKILL) in reverse order on exit."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for proc in reversed(started):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(started):
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@contextlib.contextmanager
def pair(children: list[subprocess.Popen[bytes]], command: list[str], port_a: int, port_b: int,
         probe: str, env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]]:
    """Instance A (measured) on CPU 0 and publisher B on CPU 1; both stopped on exit."""
    a = subprocess.Popen(["taskset", "-c", "0", *command, str(port_a)], env=env)
    children.append(a)
    b = subprocess.Popen(["taskset", "-c", "1", *command, str(port_b)], env=env)
    children.append(b)
    try:
        for port, proc in ((port_a, a), (port_b, b)):
            wait_http(f"http://127.0.0.1:{port}{probe}", proc)
        time.sleep(1)      # let RSS settle before the harness reads it
        yield a, b
    finally:
        for proc in (a, b):
            proc.terminate()
        for proc in (a, b):
            proc.wait(10)


def pidfile(run_dir: Path, name: str, pid: int) -> str:
    path = run_dir / f"{name}.pid"
    path.write_text(str(pid))
    return str(path)


def harness(args: argparse.Namespace, run_dir: Path, *, target: str, label: str, n: int, server_pid: int,
            aux: list[str], env: dict[str, str], json_out: Path, extra: list[str]) -> None:
    cmd = ["taskset", "-c", "1", sys.executable, str(HARNESS_DIR / "ws_fanout.py"), "--target", target,
           "--label", label, "--server-pid", str(server_pid), "--server-cpu-note", "taskset 0",
           *[arg for path in aux for arg in ("--aux-pidfile", path)], "--pin-clients", "1",
           "-n", str(n), *STANDARD, "--json-out", str(json_out), *extra]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, env=env, check=True)


def run(args: argparse.Namespace) -> None:
    from backend.config import Config
    from backend.embedded_share import services

    raise_fd_limit()
    RESULTS.mkdir(parents=True, exist_ok=True)
    day = dt.date.today().isoformat()
    json_out = RESULTS / f"runs-{day}.jsonl"
    first_line = sum(1 for _ in json_out.open()) if json_out.exists() else 0
    data_dir = Path(tempfile.mkdtemp(prefix="ws-bench-"))
    run_dir = data_dir / "run"
    run_dir.mkdir()
    base = dataclasses.replace(Config.from_env(), instance="")
    with services(base, data_dir) as ready, processes() as children:
        if not (ready.database_url and ready.redis_url):
            raise SystemExit("no database or Redis")
        redis_pid = _redis_pid(ready.redis_url)
        if redis_pid:
            os.sched_setaffinity(redis_pid, {1})
        env = {**os.environ, "DATABASE_URL": ready.database_url, "REDIS_URL": ready.redis_url,
               "JWT_SECRET": os.environ.get("JWT_SECRET", uuid.uuid4().hex * 2), "LOG_LEVEL": "WARNING",
               "REDIS_PREFIX": f"bench{uuid.uuid4().hex[:6]}:"}
        python = [sys.executable, str(ROOT / "run.py")]
        subprocess.run([*python, "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([*python, "create-user", "--login", ADMIN_LOGIN, "--password", ADMIN_PASSWORD,
                        "--role", "admin"], env=env, check=False, stdout=subprocess.DEVNULL)
        if args.auth:
            subprocess.run([*python, "create-user", "--login", USER_LOGIN, "--password", USER_PASSWORD,
                            "--role", "client"], env=env, check=False, stdout=subprocess.DEVNULL)
        harness_env = {**env, "PROJECT_A_URL": f"http://127.0.0.1:{PORT_A}",
                       "PROJECT_B_URL": f"http://127.0.0.1:{PORT_B}",
                       "PROJECT_ADMIN_LOGIN": ADMIN_LOGIN, "PROJECT_ADMIN_PASSWORD": ADMIN_PASSWORD}
        me = [sys.executable, str(Path(__file__).resolve()), "serve", "--port"]
        peer = [sys.executable, str(HARNESS_DIR / "peers" / "aiohttp_bare.py"), "--redis", ready.redis_url,
                "--mode", args.peer or "rawframe", "--port"]
        redis_aux = [pidfile(run_dir, "redis", redis_pid)] if redis_pid else []
        recoveries: list[tuple[int, list[float]]] = []
        for n in args.n:
            # Fresh instances for every target, as the peers were measured: RSS per connection is
            # read as growth from before the first connect, so a second run on the same process
            # reuses what the first one's sockets freed and shows almost nothing (0.4 KB/conn
            # for history-off on 2026-12-02 was that artefact, not a cheaper connection).
            targets = ([("project:streams", STREAM_CHANNEL), ("project:history-off", PLAIN_CHANNEL)]
                       if args.streams else [("project", None)])
            for label, channel in targets:
                with pair(children, me, PORT_A, PORT_B, "/health/ready", env) as (a, b):
                    extra = ["--channel", channel] if channel else []
                    if args.auth:
                        # One user's bearer on every socket: the upgrade's whole auth path (JWT, deny-list,
                        # identity, user:{id}, presence) per connection; per-user state only once.
                        extra += ["--header", f"Authorization: Bearer {user_bearer()}"]
                        label += "+auth"
                    harness(args, run_dir, target="project", label=label, n=n, server_pid=a.pid,
                            aux=[pidfile(run_dir, "project-B", b.pid), *redis_aux], env=harness_env,
                            json_out=json_out, extra=extra)
            if args.recovery:
                with pair(children, me, PORT_A, PORT_B, "/health/ready", env):
                    recovery_ms = asyncio.run(measure_recovery(args.recovery))
                    print(f"recovery of {RECOVERED} events, {args.recovery} resubscribes: "
                          f"p50 {_pct(recovery_ms, 50):.2f} ms, p99 {_pct(recovery_ms, 99):.2f} ms, "
                          f"max {max(recovery_ms):.2f} ms", flush=True)
                    recoveries.append((n, recovery_ms))
            if args.peer:
                with pair(children, peer, PEER_A, PEER_B, "/stats", env) as (a, b):
                    harness(args, run_dir, target="aiohttp-bare", label=f"aiohttp-bare:{args.peer}", n=n,
                            server_pid=a.pid, aux=[pidfile(run_dir, "peer-B", b.pid), *redis_aux], env=env,
                            json_out=json_out, extra=[])
    lines = json_out.read_text().splitlines()[first_line:]
    write_report(RESULTS / f"ws-fanout-{day}.md", [json.loads(line) for line in lines if line.strip()], args,
                 recoveries)


async def measure_recovery(trials: int) -> list[float]:
    """Resubscribe `trials` times `RECOVERED` events behind the top of `bench` on A (published through B);
    each figure is the time from sending `subscribe` with `since` to reading the last missed event —
    the server's recovery plus one localhost round trip, so an upper bound of the server-side time."""
    import aiohttp

    base_a, base_b = f"http://127.0.0.1:{PORT_A}", f"http://127.0.0.1:{PORT_B}"
    async with aiohttp.ClientSession() as http:
        login = await http.post(f"{base_b}/api/auth/login/", json={"login": ADMIN_LOGIN, "password": ADMIN_PASSWORD})
        auth = {"Authorization": f"Bearer {(await login.json())['access']}"}
        for n in range(RECOVERED):
            sent = await http.post(f"{base_b}/api/realtime/publish", headers=auth,
                                   json={"channel": STREAM_CHANNEL, "event": "recovery", "data": {"n": n}})
            sent.raise_for_status()
        async with http.ws_connect(f"{base_a}/ws") as ws:
            await ws.send_json({"type": "subscribe", "channel": STREAM_CHANNEL, "id": 0})
            reply = await ws.receive_json()
        since = {"offset": reply["offset"] - RECOVERED, "epoch": reply["epoch"]}
        timings: list[float] = []
        for trial in range(trials):
            async with http.ws_connect(f"{base_a}/ws") as ws:
                started = time.perf_counter()
                await ws.send_json({"type": "subscribe", "channel": STREAM_CHANNEL, "id": trial, "since": since})
                answer = await ws.receive_json()
                if not answer.get("recovered"):
                    raise SystemExit(f"recovery failed: {answer}")
                for _ in range(RECOVERED):
                    await ws.receive_str()
                timings.append((time.perf_counter() - started) * 1000)
    return timings


def user_bearer() -> str:
    """An access token of `bench_user`, from instance B's login (SPEC §3.2)."""
    body = json.dumps({"login": USER_LOGIN, "password": USER_PASSWORD}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{PORT_B}/api/auth/login/", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        return str(json.loads(resp.read())["access"])


def _pct(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def _redis_pid(url: str) -> int | None:
    """The pid of the Redis server (for CPU pinning and the harness's noise accounting)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        return int(client.info("server")["process_id"])
    except Exception:
        return None
    finally:
        client.close()


def _get(run: dict[str, Any], *path: str) -> Any:
    value: Any = run
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def write_report(path: Path, runs: list[dict[str, Any]], args: argparse.Namespace,
                 recoveries: list[tuple[int, list[float]]]) -> None:
    """A markdown table of this invocation's runs, appended to the day's file."""
    rows = ["| target | N | connect s | KB/conn | rate delivered/s | rate p50 / p99 / max ms | rate srv CPU% | "
            "rate srv µs/d | burst deliveries/s | burst p50 / p99 ms | burst srv µs/d | lost | pub errors |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for run in runs:
        rate, burst = run.get("phases", {}).get("rate", {}), run.get("phases", {}).get("burst", {})
        rate_lat, burst_lat = rate.get("lat_ms", {}), burst.get("lat_ms", {})
        cells = [run.get("label"), run.get("n"), _fmt(run.get("connect_s"), 2), _fmt(run.get("kb_per_conn")),
                 _fmt(rate.get("deliveries_per_s"), 0),
                 f"{_fmt(rate_lat.get('p50'))} / {_fmt(rate_lat.get('p99'))} / {_fmt(rate_lat.get('max'))}",
                 _fmt(rate.get("srv_cpu_pct")), _fmt(rate.get("srv_us_per_delivery")),
                 _fmt(burst.get("deliveries_per_s"), 0),
                 f"{_fmt(burst_lat.get('p50'))} / {_fmt(burst_lat.get('p99'))}",
                 _fmt(burst.get("srv_us_per_delivery")),
                 _fmt((rate.get("lost") or 0) + (burst.get("lost") or 0), 0),
                 _fmt((rate.get("pub_errors") or 0) + (burst.get("pub_errors") or 0), 0)]
        rows.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = [f"## ws fan-out, {stamp}", "",
            f"`{' '.join(['.venv/bin/python', 'scripts/bench/ws_fanout.py', *sys.argv[1:]])}` — one server "
            "process per target pinned to CPU 0; clients, publisher instance B and Redis on CPU 1; harness "
            f"`../shared/bench/ws_fanout.py` with `{' '.join(STANDARD)}`. Publish path: HTTP POST to B's "
            "`/api/realtime/publish` as an admin (bearer from `/api/auth/login/`) → Redis → A → clients. "
            "`cars` is the app's own public channel: each subscription also reads its snapshot of free cars "
            "(none in the bench database).",
            "", *rows, "",
            *[f"Recovery of {RECOVERED} missed events (fresh instances, after the N = {n} runs), {len(ms)} "
              f"resubscribes with `since` on A: p50 {_pct(ms, 50):.2f} ms, p99 {_pct(ms, 99):.2f} ms, max {max(ms):.2f} ms "
              "(send of `subscribe` to the last missed event read, localhost: an upper bound of the server's time)."
              for n, ms in recoveries],
            "", "Raw JSON lines: `" + f"runs-{dt.date.today().isoformat()}.jsonl" + "`.", "", ""]
    with path.open("a") as out:
        out.write("\n".join(text))
    print("\n".join(text))


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    serve_parser = sub.add_parser("serve", help="(internal) one app instance with the bench namespace")
    serve_parser.add_argument("--port", type=int, required=True)
    parser.add_argument("-n", type=int, action="append", help="connections (repeatable; default 1000 5000 10000)")
    parser.add_argument("--streams", action="store_true",
                        help="measure `bench` (streams on) and `benchplain` (history off) in the same run (SPEC §12.5)")
    parser.add_argument("--recovery", type=int, default=0, metavar="TRIALS",
                        help="also time TRIALS recoveries of 100 missed events (SPEC §12.5)")
    parser.add_argument("--auth", action="store_true",
                        help="project sockets carry a bearer (one user's) instead of connecting anonymously")
    parser.add_argument("--peer", choices=["send_str", "frame", "queue", "rawframe"],
                        help="also run the bare-aiohttp peer in this mode")
    parser.add_argument("--cluster", action="store_true",
                        help="instead: 8 channels, one Redis beside a 3-master Valkey Cluster (scripts/bench/_cluster.py)")
    parser.add_argument("--cluster-events", type=int, default=50, metavar="E",
                        help="with --cluster: burst events per channel")
    args = parser.parse_args()
    if args.command == "serve":
        serve(args.port)
        return
    if args.cluster:
        from _cluster import run_cluster

        raise_fd_limit()
        args.n = args.n or [2000]
        run_cluster(args, [sys.executable, str(Path(__file__).resolve()), "serve", "--port"], pair, processes,
                    (ADMIN_LOGIN, ADMIN_PASSWORD), (PORT_A, PORT_B))
        return
    args.n = args.n or [1000, 5000, 10000]
    run(args)


if __name__ == "__main__":
    main()
