"""run.py as a newcomer runs it: embedded servers, data kept across restarts, nothing left behind."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import asyncpg
import psutil
import pytest

from backend.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env["JWT_SECRET"] = "run-test-secret"
    return env


async def _wait_ready(port: int, proc: subprocess.Popen[bytes], limit: float = 60) -> dict:
    deadline = time.monotonic() + limit
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"run.py exited with {proc.returncode}")
            try:
                async with session.get(f"http://127.0.0.1:{port}/health/ready") as resp:
                    if resp.status == 200:
                        return await resp.json()
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("run.py did not become ready")


def _children(proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
    return psutil.Process(proc.pid).children(recursive=True)


def _embedded_url(data_dir: Path) -> str:
    port = int((data_dir / "pg" / "postmaster.pid").read_text().splitlines()[3])
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


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
        body = await _wait_ready(port, proc)
        assert (body["status"], body["db"], body["redis"]) == ("ok", "ok", "ok")
        servers = _children(proc)
        names = {p.name() for p in servers}
        assert "postgres" in names and any("valkey" in n for n in names), names
        conn = await asyncpg.connect(_embedded_url(data_dir))
        await conn.execute("INSERT INTO roles (name) VALUES ('tourist')")
        await conn.close()
    finally:
        await _stop(proc)
    assert proc.returncode == 0
    _, alive = psutil.wait_procs(servers, timeout=10)
    assert not alive, f"left behind: {alive}"

    # Second start on the same data dir: the role written before is still there.
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await _wait_ready(port, proc)
        servers = _children(proc)
        conn = await asyncpg.connect(_embedded_url(data_dir))
        assert await conn.fetchval("SELECT count(*) FROM roles WHERE name = 'tourist'") == 1
        await conn.close()
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
        body = await _wait_ready(port, proc)
        assert body["db"] == "ok" and body["redis"] == "ok"
        assert len([p for p in _children(proc) if "python" in p.name() or "gunicorn" in p.name()]) == 2
    finally:
        await _stop(proc, signal.SIGTERM)
    assert proc.returncode == 0
