"""run.py as a newcomer runs it: embedded servers, data kept across restarts, nothing left behind."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import asyncpg
import psutil
import pytest
import redis.asyncio as redis

from backend.auth.users import create_user
from backend.cli import main
from backend.config import Config, ConfigError
from backend.db import make_engine
from backend.embedded import free_port
from tests.services import wait_ready
from tests.support import eventually

ROOT = Path(__file__).resolve().parent.parent


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env["JWT_SECRET"] = "run-test-secret"
    return env


def _children(proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
    return psutil.Process(proc.pid).children(recursive=True)


def _embedded_url(data_dir: Path) -> str:
    port = int((data_dir / "pg" / "postmaster.pid").read_text().splitlines()[3])
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def _valkey_url(data_dir: Path) -> str:
    port = int((data_dir / "valkey" / "server.port").read_text().split()[1])
    return f"redis://127.0.0.1:{port}/0"


def _serve(port: int, env: dict[str, str], data_dir: Path | None = None) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, str(ROOT / "run.py"), "serve", "--port", str(port)]
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGINT) -> None:
    proc.send_signal(sig)
    await asyncio.to_thread(proc.wait, 30)


@pytest.mark.slow
async def test_serve_with_embedded_servers_keeps_data_and_cleans_up(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    port = free_port()
    cmd = [sys.executable, str(ROOT / "run.py"), "serve", "--port", str(port), "--data-dir", str(data_dir)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        body = await wait_ready(port, proc)
        assert (body["status"], body["db"], body["redis"]) == ("ok", "ok", "ok")
        servers = _children(proc)
        names = {p.name() for p in servers}
        assert "postgres" in names and any("valkey" in n for n in names), names
        conn = await asyncpg.connect(_embedded_url(data_dir))
        await conn.execute("INSERT INTO roles (name) VALUES ('tourist')")
        await conn.close()
        valkey = redis.Redis.from_url(_valkey_url(data_dir))
        await valkey.set("kept-across-restarts", "yes")
        await valkey.aclose()
    finally:
        await _stop(proc)
    assert proc.returncode == 0
    _, alive = psutil.wait_procs(servers, timeout=10)
    assert not alive, f"left behind: {alive}"

    # Second start on the same data dir: the role written before is still there.
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await wait_ready(port, proc)
        servers = _children(proc)
        conn = await asyncpg.connect(_embedded_url(data_dir))
        assert await conn.fetchval("SELECT count(*) FROM roles WHERE name = 'tourist'") == 1
        await conn.close()
        valkey = redis.Redis.from_url(_valkey_url(data_dir))
        assert await valkey.get("kept-across-restarts") == b"yes"      # AOF on: sessions survive too
        await valkey.aclose()
    finally:
        await _stop(proc, signal.SIGTERM)
    assert proc.returncode == 0
    _, alive = psutil.wait_procs(servers, timeout=10)
    assert not alive, f"left behind after SIGTERM: {alive}"


async def test_migrate_command_with_urls_starts_nothing(services) -> None:
    url = await services.fresh_database()
    env = _env() | {"DATABASE_URL": url, "REDIS_URL": services.redis_url}
    done = await asyncio.to_thread(subprocess.run, [sys.executable, str(ROOT / "run.py"), "migrate"],
                                   cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "up to date" in done.stdout


async def test_bad_configuration_fails_with_the_variable_name() -> None:
    env = _env() | {"WS_HEARTBEAT": "soon"}
    done = await asyncio.to_thread(subprocess.run, [sys.executable, str(ROOT / "run.py"), "migrate"],
                                   cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "WS_HEARTBEAT" in done.stderr


async def test_gunicorn_workers_serve_the_same_app(services) -> None:
    url = await services.fresh_database()
    port = free_port()
    env = _env() | {"DATABASE_URL": url, "REDIS_URL": services.redis_url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "backend.gunicorn:app", "--worker-class", "aiohttp.GunicornWebWorker",
         "--workers", "2", "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "5"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        body = await wait_ready(port, proc)
        assert body["db"] == "ok" and body["redis"] == "ok"
        assert len([p for p in _children(proc) if "python" in p.name() or "gunicorn" in p.name()]) == 2
    finally:
        await _stop(proc, signal.SIGTERM)
    assert proc.returncode == 0


@pytest.mark.slow
async def test_second_serve_on_one_data_dir_shares_the_servers_and_the_last_one_stops_them(
        tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    port_a, port_b = free_port(), free_port()
    first = _serve(port_a, _env(), data_dir)
    second = None
    try:
        await wait_ready(port_a, first)
        # The postmaster and the Valkey server (their workers come and go on their own).
        servers = [p for p in psutil.Process(first.pid).children()
                   if p.name() == "postgres" or "valkey" in p.name()]
        assert len(servers) == 2, servers
        second = _serve(port_b, _env(), data_dir)
        await wait_ready(port_b, second)
        assert not [p for p in _children(second) if p.name() == "postgres"]      # attached, not started
        await _stop(first)
        assert first.returncode == 0
        # The first one is gone, its servers are not: the second still serves on them.
        assert all(p.is_running() for p in servers)
        body = await wait_ready(port_b, second, limit=10)
        assert (body["db"], body["redis"]) == ("ok", "ok")
    finally:
        if first.poll() is None:
            await _stop(first)
        if second is not None:
            await _stop(second, signal.SIGTERM)
    assert second.returncode == 0
    _, alive = psutil.wait_procs(servers, timeout=20)
    assert not alive, f"left behind by the last one out: {alive}"
    assert not list((data_dir / "leases").iterdir())


async def test_two_serve_processes_with_urls_are_one_service(services) -> None:
    """Two run.py processes on different ports, one database and one Redis: a token from A works on
    B, an event published through A reaches a websocket on B, and neither starts a server."""
    url = await services.fresh_database()
    env = _env() | {"DATABASE_URL": url, "REDIS_URL": services.redis_url, "REDIS_PREFIX": "two-procs:"}
    created = await asyncio.to_thread(
        subprocess.run, [sys.executable, str(ROOT / "run.py"), "create-user", "--login", "boss",
                         "--password", "boss-password-1", "--role", "admin"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert created.returncode == 0, created.stderr
    port_a, port_b = free_port(), free_port()
    a, b = _serve(port_a, env), _serve(port_b, env)
    try:
        await wait_ready(port_a, a)
        await wait_ready(port_b, b)
        for proc in (a, b):
            names = {p.name() for p in _children(proc)}
            assert "postgres" not in names and not any("valkey" in n for n in names), names
        async with aiohttp.ClientSession() as http:
            login = await http.post(f"http://127.0.0.1:{port_a}/api/auth/login/",
                                    json={"login": "boss", "password": "boss-password-1"})
            assert login.status == 200
            auth = {"Authorization": f"Bearer {(await login.json())['access']}"}
            async with http.ws_connect(f"http://127.0.0.1:{port_b}/ws", headers=auth) as ws:
                await ws.send_json({"type": "subscribe", "channel": "dashboard", "id": 1})
                assert (await ws.receive_json(timeout=5))["type"] == "subscribed"
                sent = await http.post(f"http://127.0.0.1:{port_a}/api/realtime/publish", headers=auth,
                                       json={"channel": "dashboard", "event": "hello", "data": {"n": 1}})
                assert sent.status == 200
                event = await ws.receive_json(timeout=5)
                assert (event["channel"], event["event"], event["data"]) == ("dashboard", "hello", {"n": 1})
    finally:
        await _stop(a, signal.SIGTERM)
        await _stop(b, signal.SIGTERM)
    assert (a.returncode, b.returncode) == (0, 0)


# ---- run.py serve --workers N (issue 11 item 4) and the header-read timeout (issue 10 item 10) ----

async def _instances(port: int, want: int) -> set[str]:
    """Instance names answering /health/live over fresh connections (SO_REUSEPORT spreads them),
    polled until `want` have answered: the first worker may be ready before the others listen."""
    seen: set[str] = set()

    async def enough() -> set[str]:
        async with (aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http,
                    http.get(f"http://127.0.0.1:{port}/health/live") as resp):
            assert resp.status == 200
            seen.add((await resp.json())["instance"])
        assert len(seen) >= want, f"only {seen} answered"
        return seen

    return await eventually(enough, timeout=30)


def _pid_of(instance: str) -> int:
    return int(instance.split("-")[-2])          # hostname-pid-random (backend.app)


def _serve_two_workers(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`run.py serve --workers 2` on `port`, quiet."""
    return subprocess.Popen([sys.executable, str(ROOT / "run.py"), "serve", "--port", str(port), "--workers", "2"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.slow
async def test_serve_workers_share_the_port_and_one_set_of_embedded_servers_and_stop_on_ctrl_c(
        tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "serve", "--port", str(port), "--workers", "2",
                             "--data-dir", str(data_dir)], cwd=ROOT, env=_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await wait_ready(port, proc)
        instances = await _instances(port, 2)
        assert len(instances) == 2, instances
        everything = _children(proc)
        assert {_pid_of(name) for name in instances} <= {p.pid for p in everything}   # run.py's own
        children = psutil.Process(proc.pid).children()
        # Started once, by the parent: one postmaster and one Valkey for both workers.
        assert len([p for p in children if p.name() == "postgres"]) == 1
        assert len([p for p in children if "valkey" in p.name()]) == 1
    finally:
        os.killpg(proc.pid, signal.SIGINT)       # Ctrl-C: the terminal signals the foreground group
        await asyncio.to_thread(proc.wait, 30)
    assert proc.returncode == 0
    _, alive = psutil.wait_procs(everything, timeout=20)
    assert not alive, f"left behind: {alive}"


async def test_serve_workers_share_one_signing_key_and_stop_on_sigterm(services) -> None:
    """No JWT_SECRET: the parent's random key goes to every worker, so a token signed by one is
    accepted by the other; SIGTERM to the parent alone stops them all."""
    url = await services.fresh_database()
    env = {k: v for k, v in _env().items() if k != "JWT_SECRET"} | {
        "DATABASE_URL": url, "REDIS_URL": services.redis_url, "REDIS_PREFIX": "workers:"}
    engine = make_engine(url, pool_size=1, max_overflow=0)
    try:
        await create_user(engine, Config(argon2_memory_kib=1024, argon2_time_cost=1), login="boss",
                          password="boss-password-1", role="admin")
    finally:
        await engine.dispose()
    port = free_port()
    proc = _serve_two_workers(port, env)
    try:
        await wait_ready(port, proc)
        workers = [psutil.Process(_pid_of(name)) for name in await _instances(port, 2)]
        assert len(workers) == 2
        async with aiohttp.ClientSession() as http:
            login = await http.post(f"http://127.0.0.1:{port}/api/auth/login/",
                                    json={"login": "boss", "password": "boss-password-1"})
            assert login.status == 200
            auth = {"Authorization": f"Bearer {(await login.json())['access']}"}
        accepted_by: set[str] = set()
        for _ in range(60):
            # One connection for both requests: /health/live names the worker that checks the token.
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as http:
                async with http.get(f"http://127.0.0.1:{port}/health/live") as live:
                    instance = (await live.json())["instance"]
                async with http.get(f"http://127.0.0.1:{port}/api/auth/me/", headers=auth) as me:
                    assert me.status == 200, await me.text()
            accepted_by.add(instance)
            if len(accepted_by) == 2:
                break
        assert len(accepted_by) == 2
    finally:
        await _stop(proc, signal.SIGTERM)
    assert proc.returncode == 0
    _, alive = psutil.wait_procs(workers, timeout=15)
    assert not alive, f"workers left behind: {alive}"


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5", ""])
def test_bad_workers_value_is_refused_before_anything_starts(value: str, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    # run.py's own main(), in process: argparse exits 2 before any server or worker starts.
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--workers", value, "--data-dir", str(tmp_path / "var")])
    assert exited.value.code == 2 and "--workers" in capsys.readouterr().err
    assert not (tmp_path / "var").exists()


@pytest.mark.parametrize("killed", ["parent", "worker"])
async def test_a_killed_parent_or_worker_leaves_no_worker_behind(killed: str, services) -> None:
    """SIGKILL of the parent leaves it no chance to stop its workers: they notice and leave the port.
    SIGKILL of a worker: the parent stops the other one and exits 1 (a process manager restarts
    the set)."""
    url = await services.fresh_database()
    env = _env() | {"DATABASE_URL": url, "REDIS_URL": services.redis_url}
    port = free_port()
    proc = _serve_two_workers(port, env)
    try:
        await wait_ready(port, proc)
        workers = [psutil.Process(_pid_of(name)) for name in await _instances(port, 2)]
        everything = _children(proc)
        (proc if killed == "parent" else workers[0]).kill()
        await asyncio.to_thread(proc.wait, 30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == (-signal.SIGKILL if killed == "parent" else 1)
    _, alive = await asyncio.to_thread(psutil.wait_procs, everything, timeout=15)
    assert not alive and not any(w.is_running() for w in workers), f"left behind: {alive}"


async def test_connections_without_complete_headers_are_closed_after_header_timeout(services) -> None:
    """200 half-sent requests (and one trickling a byte at a time) are closed by the server after
    HEADER_TIMEOUT, while complete requests are still answered."""
    url = await services.fresh_database()
    env = _env() | {"DATABASE_URL": url, "REDIS_URL": services.redis_url, "HEADER_TIMEOUT": "1"}
    port = free_port()
    proc = _serve(port, env)
    writers: list[asyncio.StreamWriter] = []
    try:
        await wait_ready(port, proc)
        half: list[asyncio.StreamReader] = []
        for _ in range(200):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /health/live HT")
            half.append(reader)
            writers.append(writer)
        trickle_reader, trickle = await asyncio.open_connection("127.0.0.1", port)
        writers.append(trickle)

        async def drip() -> None:
            for byte in b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
                trickle.write(bytes([byte]))
                await asyncio.sleep(0.05)

        dripping = asyncio.create_task(drip())
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/health/live") as resp:
            assert resp.status == 200                # a complete request is served meanwhile

        async def closed(reader: asyncio.StreamReader) -> bool:
            try:
                return await asyncio.wait_for(reader.read(), 10) == b""   # EOF, no response
            except ConnectionResetError:
                return True

        results = await asyncio.gather(*(closed(r) for r in [*half, trickle_reader]))
        assert all(results)
        assert not dripping.done()                   # closed while still sending its headers
        dripping.cancel()
    finally:
        for writer in writers:
            writer.close()
        await _stop(proc, signal.SIGTERM)
    assert proc.returncode == 0


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_bad_header_timeout_fails_with_the_variable_name(value: str) -> None:
    # 0 is refused too: aiohttp reads it as "no timer", which would hold half-sent requests forever.
    with pytest.raises(ConfigError, match="HEADER_TIMEOUT"):
        Config.from_env({"HEADER_TIMEOUT": value})
    assert Config.from_env({}).header_timeout == 10.0
