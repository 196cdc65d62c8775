"""`run.py serve` for the benchmarks: started on a free port with a fresh user, stopped afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "bench-password-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def served(data_dir: Path, role: str) -> AsyncIterator[tuple[str, str]]:
    """`run.py serve` on a free port; yields (base URL, "login:password" of a fresh user of `role`).

    Embedded PostgreSQL and Valkey under `data_dir` unless DATABASE_URL / REDIS_URL are set; the
    user is made by `run.py create-user`, so its password has the production argon2id parameters.
    """
    port = free_port()
    run = [sys.executable, str(ROOT / "run.py")]
    env = {**os.environ, "JWT_SECRET": os.environ.get("JWT_SECRET", uuid.uuid4().hex * 2), "LOG_LEVEL": "WARNING"}
    proc = await asyncio.create_subprocess_exec(*run, "serve", "--port", str(port), "--data-dir", str(data_dir),
                                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(url, proc)
        login = f"bench-{role}-{uuid.uuid4().hex[:6]}"
        create = await asyncio.create_subprocess_exec(
            *run, "create-user", "--login", login, "--password", PASSWORD, "--role", role,
            "--data-dir", str(data_dir), cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        if await create.wait() != 0:
            raise SystemExit("run.py create-user failed")
        yield url, f"{login}:{PASSWORD}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()


async def wait_ready(url: str, proc: asyncio.subprocess.Process | subprocess.Popen[bytes],
                     within: float = 90) -> None:
    """Wait for /health/ready of a started instance (bounded; an exited one fails at once)."""
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            code = proc.poll() if isinstance(proc, subprocess.Popen) else proc.returncode
            if code is not None:
                raise SystemExit(f"run.py serve exited with {code}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url + "/health/ready") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.2)
    raise SystemExit(f"{url} did not become ready")


def wait_http(url: str, proc: subprocess.Popen[bytes], limit: float = 60) -> None:
    """Block until `url` answers below 500; exit the bench if `proc` dies or `limit` passes."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args} exited with {proc.returncode}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as resp:
            if resp.status < 500:
                return
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {limit} s")
