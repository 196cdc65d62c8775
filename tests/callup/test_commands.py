"""`run.py create-app` (SPEC §1.3, §11.3) against the test's database."""

from __future__ import annotations

import uuid

from aiohttp.test_utils import TestClient

from backend.config import Config
from tests.auth.test_commands import run


async def test_create_app_prints_id_and_token(client: TestClient, config: Config) -> None:
    code, out, err = await run(config, "create-app", "--name", "Demo app")
    assert code == 0, err
    lines = dict(line.split(": ", 1) for line in out.strip().splitlines())
    assert set(lines) == {"id", "token"}
    assert int(lines["id"]) > 0
    assert uuid.UUID(lines["token"]).version == 4
    # The token is what X-Application-Token resolves: a principal of that app, not of a user.
    me = await client.get("/v1/apps/me", headers={"X-Application-Token": lines["token"]})
    assert await me.json() == {"data": {"id": int(lines["id"]), "name": "Demo app"}, "errors": None}
    resp = await client.get("/api/auth/me/", headers={"X-Application-Token": lines["token"]})
    assert resp.status == 401          # an app is not a user
    unknown = await client.get("/api/auth/me/", headers={"X-Application-Token": str(uuid.uuid4())})
    assert unknown.status == 403
    code, _, _ = await run(config, "create-app", "--name", "  ")
    assert code == 1
