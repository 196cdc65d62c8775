"""Demo data for `run.py serve --demo` (SPEC §1.3), loaded through the real API of an in-process app.

Going through HTTP means every rule (validation, computed fuel figures, snapshots) applies to
demo data exactly as to a client's. Loading is idempotent: a second start finds the demo admin
and only prints the credentials again.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import func, select

from backend.app import create_app
from backend.auth.tables import users
from backend.auth.users import create_user
from backend.callup.apps import token_named
from backend.config import Config
from backend.db import make_engine, read

log = logging.getLogger("backend.demo")

PASSWORD = "demo-password"
DEMO_APP = "Demo app"
DASHBOARD_USER = "demo-operator"     # can_view_dashboard (as is_admin); the other demo roles cannot
USERS = [("demo-admin", "admin"), ("demo-operator", "operator"), ("demo-mechanic", "mechanic"),
         ("demo-driver", "driver"), ("demo-client", "client")]
CARS = [("A001AA54", "Toyota", "Camry", "55.030204", "82.920430"),
        ("B002BB54", "Kia", "Rio", "55.041500", "82.934600"),
        ("C003CC54", "Hyundai", "Solaris", "55.018800", "82.910100")]


async def _ensure_users(config: Config) -> bool:
    """Create the demo users; False when they already exist (demo loaded before)."""
    assert config.database_url
    engine = make_engine(config.database_url, pool_size=1, max_overflow=0)
    try:
        async with read(engine) as conn:
            exists = (await conn.execute(select(func.count()).where(users.c.login == "demo-admin"))).scalar_one()
        if exists:
            return False
        for index, (login, role) in enumerate(USERS, start=1):
            await create_user(engine, config, login=login, password=PASSWORD, role=role,
                              email=f"{login}@example.com", phone=f"+7900000000{index}",
                              name=login.split("-")[1].capitalize(), driver_license=f"77000{index:05d}")
        return True
    finally:
        await engine.dispose()


async def _call(session: aiohttp.ClientSession, method: str, path: str, token: str, body: Any = None) -> Any:
    async with session.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"}) as resp:
        data = await resp.json()
        if resp.status >= 300:
            raise RuntimeError(f"demo: {method} {path} → {resp.status} {data}")
        return data


async def _load_fleet(base: str) -> None:
    async with aiohttp.ClientSession(base) as session:
        async with session.post("/api/auth/login/", json={"login": "demo-mechanic", "password": PASSWORD}) as resp:
            token = (await resp.json())["access"]
        for number, brand, model, lat, lon in CARS:
            car = await _call(session, "POST", "/api/passenger-cars/", token,
                              {"number": number, "brand": brand, "model": model, "shared": True, "lat": lat,
                               "lon": lon, "fuel_level": "40.000", "tariff_per_minute": "9.900"})
            for season in ("summer", "winter"):
                await _call(session, "POST", "/api/passenger-car-norms/", token,
                            {"car": car["id"], "season": season, "city_norm": "0.090", "area_norm": "0.110",
                             "date": "2024-09-01"})
            await _call(session, "POST", "/api/passenger-car-odometer-fuel/", token,
                        {"car": car["id"], "odometer": 100000, "fuel": "40.000", "date": "2024-09-01"})
        truck = await _call(session, "POST", "/api/fire-trucks/", token,
                            {"number": "A101AA54", "brand": "КАМАЗ", "model": "43118", "type": "АЦ-3,2-40"})
        await _call(session, "POST", "/api/fire-truck-norms/", token,
                    {"car": truck["id"], "season": "winter", "with_pump_norm": "0.250",
                     "without_pump_norm": "0.150", "km_norm": "0.657", "date": "2024-09-01"})
        await _call(session, "POST", "/api/fire-truck-odometer-fuel/", token,
                    {"car": truck["id"], "odometer": 20000, "fuel": "150.000", "date": "2024-09-01"})
        async with session.post("/api/auth/login/", json={"login": "demo-admin", "password": PASSWORD}) as resp:
            admin = (await resp.json())["access"]
        await _call(session, "POST", "/api/callup/apps/", admin, {"name": DEMO_APP})


async def _demo_app_token(config: Config) -> str | None:
    assert config.database_url
    engine = make_engine(config.database_url, pool_size=1, max_overflow=0)
    try:
        async with read(engine) as conn:
            return await token_named(conn, DEMO_APP)
    finally:
        await engine.dispose()


async def load_demo(config: Config, public_url: str) -> None:
    """Load the demo data once and print the credentials and URLs."""
    if await _ensure_users(config):
        runner = web.AppRunner(create_app(config), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            await _load_fleet(f"http://127.0.0.1:{port}")
        finally:
            await runner.cleanup()
        log.info("demo data loaded")
    lines = ["", f"Demo users (password: {PASSWORD}):"]
    lines += [f"  {login:<15} role {role}" for login, role in USERS]
    lines += [f"CallUp app «{DEMO_APP}»: X-Application-Token: {await _demo_app_token(config)}",
              f"API docs:  {public_url}/docs (Authorize: any demo user's token from POST /api/auth/login/)",
              f"Dashboard: {public_url}/dashboard (sign in as {DASHBOARD_USER}, or demo-admin; "
              f"password {PASSWORD})",
              f"Health:    {public_url}/health", f"Realtime:  {public_url.replace('http', 'ws', 1)}/ws", ""]
    print("\n".join(lines), flush=True)
