"""Token expiry of many sockets on one timer per instant (backend/realtime/deadlines.py, SPEC §8.1)."""

from __future__ import annotations

import time

from sqlalchemy import select

from backend import keys
from backend.auth.tables import users
from backend.auth.tokens import issue_access
from backend.db import read
from backend.principal import TOKEN_LEEWAY
from tests.realtime.conftest import expect_close, subscribe
from tests.support import eventually


async def test_sockets_of_one_deadline_share_a_timer_and_all_close_with_4001(rt_client, make_user) -> None:
    client = await rt_client()
    user = await make_user()
    config, deadlines = client.app[keys.CONFIG], client.app[keys.HUB].deadlines
    async with read(client.app[keys.DB]) as conn:
        password_hash = (await conn.execute(select(users.c.password_hash).where(users.c.id == user.id))).scalar_one()
    issued = int(time.time()) - int(config.access_ttl) - TOKEN_LEEWAY + 2     # exp + leeway: two seconds on
    row = {"user_id": user.id, "login": user.login, "role_id": user.role_id}
    tokens = [issue_access(config, **row, password_hash=password_hash, issued_at=issued).token for _ in range(2)]
    async with client.ws_connect("/ws", headers={"Authorization": f"Bearer {tokens[0]}"}) as first, \
            client.ws_connect("/ws", headers={"Authorization": f"Bearer {tokens[1]}"}) as second, \
            client.ws_connect("/ws", headers=user.headers) as lasting:
        await subscribe(first, "news")              # both upgrades are served by now
        await subscribe(second, "news")
        assert len(deadlines._timers) == 2          # the two short tokens' instant, the lasting one's
        for ws in (first, second):
            await expect_close(ws, 4001)
        assert (await subscribe(lasting, "news"))["type"] == "subscribed"
        assert len(deadlines._timers) == 1

    async def forgotten() -> None:
        assert not deadlines._timers and not deadlines._due      # the lasting socket's release cancelled it

    await eventually(forgotten, timeout=5, interval=0.05)
