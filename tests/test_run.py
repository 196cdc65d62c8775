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

from backend.embedded import free_port
from tests.services import wait_ready

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
