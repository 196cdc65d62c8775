"""PostgreSQL restarted under traffic (issue 10): every request during the outage is a 503 in its
surface's style, never a 500; afterwards the same app — no restart — answers again from fresh
pooled connections, an open websocket sends again, and the background sweepers work again."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from pathlib import Path

import aiohttp
import pytest

from backend import keys
from backend.auth.tokens import issue_access
from backend.auth.users import create_user
from backend.callup import apps
from backend.config import Config
from backend.embedded import EmbeddedPostgres
from backend.migrations import migrate
from tests.conftest import AppFactory, TestUser
from tests.faults.instances import Api, Outcome, fire, out_of_style, shared_car, statuses
from tests.support import eventually

DB_DOWN = {"database_unavailable"}


@pytest.mark.slow
async def test_postgres_restart_is_503_in_style_and_the_pool_recovers(make_client: AppFactory, config: Config,
                                                                      tmp_path: Path) -> None:
    pg = EmbeddedPostgres(tmp_path / "pg", fsync=False)
    url = await asyncio.to_thread(pg.start)
    try:
        await migrate(url)
        cfg = dataclasses.replace(config, database_url=url, reservation_ttl=1.0)
        client = await make_client(cfg)
        base = str(client.make_url("")).rstrip("/")
        db = client.app[keys.DB]

        async def user(role: str, n: int) -> TestUser:
            row = await create_user(db, cfg, login=f"{role}{n}", password="restart-pass-1", role=role)
            token = issue_access(cfg, user_id=row["id"], login=row["login"], role_id=row["role_id"],
                                 password_hash=row["password_hash"])
            return TestUser(row["id"], row["login"], "restart-pass-1", role, row["role_id"], token.token, token.jti)

        admin, sender, reader, booker = [await user(r, n) for n, r in enumerate(("admin", "client", "client", "client"))]
        app_token = str((await apps.create(db, "pg fault"))["token"])
        phones = itertools.count(79000000200)
        async with aiohttp.ClientSession() as http:
            car = await shared_car(Api(http, admin.headers), base)
            chat = (await Api(http, sender.headers).call("POST", f"{base}/chats", {"user_id": reader.id}))["id"]
            ws = await http.ws_connect(f"{base}/ws", headers=sender.headers)

            async def mix() -> list[Outcome]:
                return list(await asyncio.gather(
                    fire(http, "GET", base, "/api/cars"),
                    fire(http, "POST", base, "/api/bookings", json={"car": car}, headers=booker.headers),
                    fire(http, "GET", base, "/api/passenger-cars/", headers=admin.headers),
                    fire(http, "POST", base, f"/chats/{chat}/messages", json={"text": "x"}, headers=sender.headers),
                    fire(http, "GET", base, "/users", headers=sender.headers),
                    fire(http, "POST", base, "/v1/orders", json={"phone": str(next(phones))},
                         headers={"X-Application-Token": app_token}),
                    fire(http, "GET", base, "/auth/me", headers=admin.headers),
                    fire(http, "POST", base, "/api/auth/login/", json={"login": admin.login,
                                                                        "password": admin.password}),
                ))

            async def send(frame_id: int) -> dict:
                await ws.send_json({"type": "send", "chat_id": chat, "text": "ws", "id": frame_id})
                while (frame := await ws.receive_json(timeout=10)).get("id") != frame_id:
                    pass
                return frame

            warm = await mix()              # fills both pools: connections the restart leaves stale
            assert all(o.status < 300 for o in warm if o.path != "/api/bookings"), warm
            assert (await send(1))["type"] == "ack"

            await asyncio.to_thread(pg.stop)
            during = [o for _ in range(2) for o in await mix()]
            assert [why for o in during if (why := out_of_style(o, DB_DOWN))] == []
            assert all(o.status == 503 for o in during), [(o.path, o.status) for o in during if o.status != 503]
            # The socket outlives the outage: its command fails with an error frame, the socket stays.
            failed = await send(2)
            assert failed["type"] == "error" and failed["code"] == "service_unavailable", failed
            assert (await fire(http, "GET", base, "/health/ready")).status == 503

            await asyncio.to_thread(pg.start)
            after: list[Outcome] = []

            async def recovered() -> None:
                answered = await mix()
                after.extend(answered)
                assert all(o.status < 300 or (o.path == "/api/bookings" and o.status == 409) for o in answered), \
                    [(o.path, o.status, o.body) for o in answered if o.status >= 300]

            await eventually(recovered, timeout=10, interval=0.1)
            assert [why for o in after if (why := out_of_style(o, DB_DOWN))] == []
            assert (await send(3))["type"] == "ack"
            # The reservation sweeper lived through the outage: the booking made afterwards expires.
            async def swept() -> None:
                now = await statuses(db, "bookings")
                assert "reserved" not in now and now.get("expired"), now

            await eventually(swept, timeout=8)
            await ws.close()
    finally:
        await asyncio.to_thread(pg.stop)
