"""`run.py create-user` (SPEC §1.3) against the test's database (create-app: tests/callup/test_commands.py)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from aiohttp.test_utils import TestClient

from backend.config import Config

ROOT = Path(__file__).resolve().parents[2]


async def run(config: Config, *args: str) -> tuple[int, str, str]:
    """run.py with the test's DATABASE_URL / REDIS_URL, so no embedded server is started."""
    assert config.database_url and config.redis_url
    env = {**os.environ, "DATABASE_URL": config.database_url, "REDIS_URL": config.redis_url,
           "LOG_LEVEL": "WARNING", "ARGON2_MEMORY_KIB": "1024", "ARGON2_TIME_COST": "1"}
    proc = await asyncio.create_subprocess_exec(sys.executable, str(ROOT / "run.py"), *args, cwd=ROOT, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_create_user_then_sign_in(client: TestClient, config: Config) -> None:
    code, out, err = await run(config, "create-user", "--login", "Boss", "--password", "boss-password-1",
                               "--role", "Admin", "--email", "boss@example.com", "--phone", "89005554433",
                               "--name", "Иван", "--surname", "Иванов", "--last-name", "Иванович")
    assert code == 0, err
    assert "boss-password-1" not in out
    login = await client.post("/api/auth/login/", json={"login": "boss", "password": "boss-password-1"})
    assert login.status == 200
    body = await login.json()
    assert body["user"]["name"] == "Иван" and body["user"]["last_name"] == "Иванович"
    me = await client.get("/profile", headers={"Authorization": f"Bearer {body['access']}"})
    assert me.status == 200
    profile = await me.json()
    assert (profile["phone"], profile["email"], profile["client_status"]) == ("+79005554433", "boss@example.com",
                                                                             "approved")
    # The role is a name; the user holds its permissions (admin may list users).
    users = await client.get("/api/users/", headers={"Authorization": f"Bearer {body['access']}"})
    assert users.status == 200


async def test_create_user_errors(config: Config) -> None:
    code, _, err = await run(config, "create-user", "--login", "x", "--password", "long-enough-1",
                             "--role", "no-such-role")
    assert code == 1 and "no-such-role" in err
    code, _, err = await run(config, "create-user", "--login", "x", "--password", "short", "--role", "driver")
    assert code == 1 and "password" in err
    assert (await run(config, "create-user", "--login", "twice", "--password", "long-enough-1",
                      "--role", "driver"))[0] == 0
    code, _, err = await run(config, "create-user", "--login", "TWICE", "--password", "long-enough-1",
                             "--role", "driver")
    assert code == 1 and "login" in err
