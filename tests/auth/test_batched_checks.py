"""Access checks read in batches (issue 11) behave under Redis faults as single checks did: an outage
fails open on the deny-list only (SPEC §8.4), an exhausted pool refuses with 503 (never unchecked)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import WSServerHandshakeError
from aiohttp.test_utils import TestClient
from sqlalchemy import update

from backend import keys
from backend.auth.tables import users
from backend.db import transaction
from backend.embedded import EmbeddedValkey, free_port
from tests.conftest import AppFactory, TestUser, UserFactory


async def upgrade_status(client: TestClient, user: TestUser) -> int:
    try:
        async with client.ws_connect("/ws", headers=user.headers) as ws:
            await ws.send_json({"type": "ping", "id": 1})
            assert (await ws.receive_json(timeout=5)) == {"type": "pong", "id": 1}
            return 101
    except WSServerHandshakeError as refused:
        return refused.status


async def test_concurrent_checks_fail_open_on_the_deny_list_only_while_redis_is_down(
        make_client: AppFactory, make_user: UserFactory, tmp_path: Path) -> None:
    valkey = EmbeddedValkey(tmp_path / "valkey", port=free_port(), persist=False)
    url = valkey.start()
    try:
        client = await make_client(redis_url=url)
        good = [await make_user(role="client") for _ in range(3)]
        blocked = await make_user(role="client")
        async with transaction(client.app[keys.DB]) as conn:
            await conn.execute(update(users).where(users.c.id == blocked.id).values(client_status="blocked"))
        await asyncio.to_thread(valkey.stop)
        order = [*good, blocked, *good]
        reads = await asyncio.gather(*(client.get("/api/auth/me/", headers=user.headers) for user in order))
        assert [resp.status for resp in reads] == [200, 200, 200, 401, 200, 200, 200]
        # The upgrade itself needs no Redis once the token is checked; joining user:{id} degrades.
        statuses = await asyncio.gather(*(upgrade_status(client, user) for user in order))
        assert statuses == [101, 101, 101, 401, 101, 101, 101]
    finally:
        valkey.stop()


async def test_concurrent_checks_on_an_exhausted_pool_are_all_refused(
        make_client: AppFactory, make_user: UserFactory) -> None:
    client = await make_client(redis_pool_size=1, redis_pool_timeout=0.05)
    revoked, user = await make_user(role="client"), await make_user(role="client")
    await client.app[keys.REVOCATIONS].deny_access(revoked.jti)
    pool = client.app[keys.REDIS].connection_pool
    held = await pool.get_connection()          # the only connection: every command waits, then fails
    try:
        order = [revoked, user] * 3
        statuses = await asyncio.gather(*(upgrade_status(client, one) for one in order))
        assert statuses == [503] * len(order)
    finally:
        await pool.release(held)
    statuses = await asyncio.gather(*(upgrade_status(client, one) for one in order))
    assert statuses == [401, 101] * 3
