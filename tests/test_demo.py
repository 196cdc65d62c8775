"""The --demo loader goes through the real API and is idempotent."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient

from backend.config import Config
from backend.demo import PASSWORD, load_demo


async def test_demo_loads_once_and_signs_in(config: Config, client: TestClient, capsys) -> None:
    await load_demo(config, "http://127.0.0.1:8080")
    await load_demo(config, "http://127.0.0.1:8080")      # second start: nothing new
    out = capsys.readouterr().out
    assert "demo-admin" in out and "/docs" in out
    # The printout names the account that opens the dashboard, and that account does open it.
    dashboard_line = next(line for line in out.splitlines() if "/dashboard" in line)
    assert "demo-operator" in dashboard_line
    signed = await client.post("/api/auth/login/", json={"login": "demo-operator", "password": PASSWORD})
    operator = {"Authorization": f"Bearer {(await signed.json())['access']}"}
    stats = await client.get("/api/ops/stats", headers=operator)
    assert stats.status == 200, await stats.text()
    resp = await client.post("/api/auth/login/", json={"login": "demo-mechanic", "password": PASSWORD})
    assert resp.status == 200
    headers = {"Authorization": f"Bearer {(await resp.json())['access']}"}
    cars = await (await client.get("/api/passenger-cars/", headers=headers)).json()
    assert cars["count"] == 3 and len(cars["results"]) == 3
    assert all(car["shared"] and car["lat"] for car in cars["results"])
    last = await client.get("/api/fire-truck-odometer-fuel/last/", params={"car": "1"}, headers=headers)
    assert (await last.json())["fuel"] == "150.000"
    # The printed CallUp token is a working app token, the same on both starts (one demo app).
    tokens = re.findall(r"X-Application-Token: ([0-9a-f-]{36})", out)
    assert len(tokens) == 2 and tokens[0] == tokens[1]
    me = await client.get("/v1/apps/me", headers={"X-Application-Token": tokens[0]})
    assert me.status == 200 and (await me.json())["data"]["name"] == "Demo app"
    free = await (await client.get("/api/cars")).json()
    assert len(free) == 3
