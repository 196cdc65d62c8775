"""Lag-tolerant reads on the raw asyncpg pool (backend.db.hot_read, chat history pages): the same rules
as read() on a real streaming replica (SPEC §13.2) — the replica for lag-tolerant reads, the primary
after a write of the same request, and the primary, without a 5xx, when the replica is lost before or
under a read."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from backend import keys
from backend.chat import messages
from backend.db import hot_read, wrote
from tests.chat.conftest import open_chat, send
from tests.conftest import AppFactory, UserFactory
from tests.replica.conftest import Standby
from tests.support import eventually

# Sleeps on the replica only, so a read repeated on the primary answers at once.
IN_RECOVERY = "SELECT pg_is_in_recovery() FROM pg_sleep(CASE WHEN pg_is_in_recovery() THEN $1 ELSE 0 END)"


async def where_hot_read(request: web.Request) -> web.Response:
    """A lag-tolerant hot read, after a write of this request when ?write=1: who answered it."""
    if request.query.get("write"):
        wrote()
    async with hot_read(request.app[keys.HOT_DB], lag_ok=True) as conn:
        replica = await conn.fetchval(IN_RECOVERY, float(request.query.get("pause", 0)))
    return web.json_response({"replica": replica})


def with_probe(app: web.Application) -> None:
    app.router.add_get("/test/where-hot-read", where_hot_read)


@pytest.fixture
async def probed(make_client: AppFactory) -> TestClient:
    return await make_client(setup=with_probe)


async def answered_by_replica(client: TestClient, **query: Any) -> bool:
    resp = await client.get("/test/where-hot-read", params={k: str(v) for k, v in query.items()})
    assert resp.status == 200, await resp.text()
    return bool((await resp.json())["replica"])


async def test_lag_tolerant_hot_reads_use_the_replica_plain_ones_the_primary(probed: TestClient) -> None:
    async def check() -> tuple[bool, bool, bool]:
        pool = probed.app[keys.HOT_DB]
        async with hot_read(pool, lag_ok=True) as conn:
            lagging = await conn.fetchval("SELECT pg_is_in_recovery()")
        async with hot_read(pool) as conn:
            plain = await conn.fetchval("SELECT pg_is_in_recovery()")
        wrote()
        async with hot_read(pool, lag_ok=True) as conn:
            after_write = await conn.fetchval("SELECT pg_is_in_recovery()")
        return lagging, plain, after_write

    # A task of its own, like a request: wrote() pins only that task to the primary.
    assert await asyncio.create_task(check()) == (True, False, False)
    assert await answered_by_replica(probed, write=1) is False
    assert await answered_by_replica(probed) is True      # the next request is a new task


async def test_a_task_that_sent_reads_history_from_the_primary(client: TestClient, standby: Standby,
                                                               make_user: UserFactory) -> None:
    """A websocket is one task: once it sent a message, its history pages show it."""
    alice, bob = await make_user(role="client"), await make_user(role="client")
    chat = await open_chat(client, alice, bob)
    app, path = client.app, f"/chats/{chat['id']}/messages"

    async def on_the_replica() -> None:
        resp = await client.get(path, headers=bob.headers)
        assert resp.status == 200, await resp.text()      # 400 chat_not_found until the chat is replayed
    await eventually(on_the_replica)

    async def page() -> list[int]:
        found = await messages.page(app[keys.HOT_DB], alice.id, chat["id"], before=None, after=None, limit=50)
        return [m["id"] for m in found]

    async def page_send_page() -> tuple[list[int], int, list[int]]:
        before = await page()
        sent, _ = await messages.post(app[keys.HOT_DB], app[keys.BUS], alice.id, chat["id"], "mine", None)
        return before, sent["id"], await page()

    await standby.pause_replay()
    try:
        before, sent, after = await asyncio.create_task(page_send_page())
        assert (before, after) == ([], [sent])
        elsewhere = await client.get(path, headers=bob.headers)      # another request: the replica, behind
        assert (await elsewhere.json())["messages"] == []
    finally:
        await standby.resume_replay()


async def test_history_falls_back_to_the_primary_when_the_replica_is_lost_then_comes_back(
        probed: TestClient, standby: Standby, make_user: UserFactory) -> None:
    alice, bob = await make_user(role="client"), await make_user(role="client")
    chat = await open_chat(probed, alice, bob)
    assert await answered_by_replica(probed)                # a pooled replica connection exists
    standby.stop()
    try:
        message = await send(probed, alice, chat["id"], "while the replica is away")
        for _ in range(2):                                  # the lost connection, then a refused connect
            resp = await probed.get(f"/chats/{chat['id']}/messages", headers=bob.headers)
            assert resp.status == 200, await resp.text()
            assert [m["id"] for m in (await resp.json())["messages"]] == [message["id"]]
        assert await answered_by_replica(probed) is False
    finally:
        standby.start()

    async def back() -> None:
        assert await answered_by_replica(probed), "still reading from the primary"
    await eventually(back, timeout=10)


async def test_a_replica_lost_under_a_running_hot_read_repeats_it_on_the_primary(
        probed: TestClient, standby: Standby) -> None:
    assert await answered_by_replica(probed)
    running = asyncio.create_task(answered_by_replica(probed, pause=5))
    conn = await standby.connect()
    try:
        async def sleeping() -> None:
            assert await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep%'"
                                       " AND pid <> pg_backend_pid()") == 1
        await eventually(sleeping)
    finally:
        await conn.close()
    standby.stop()
    try:
        assert await running is False                       # 200, answered by the primary
    finally:
        standby.start()


async def test_an_instance_starts_while_the_replica_is_down(make_client: AppFactory, standby: Standby,
                                                            make_user: UserFactory) -> None:
    """The replica's hot pool opens no connection at startup: a replica that is down stops nothing."""
    standby.stop()
    try:
        client = await make_client(setup=with_probe)
        alice, bob = await make_user(role="client"), await make_user(role="client")
        chat = await open_chat(client, alice, bob)
        message = await send(client, alice, chat["id"], "no replica yet")
        resp = await client.get(f"/chats/{chat['id']}/messages", headers=bob.headers)
        assert resp.status == 200, await resp.text()
        assert [m["id"] for m in (await resp.json())["messages"]] == [message["id"]]
    finally:
        standby.start()

    async def back() -> None:
        assert await answered_by_replica(client), "still reading from the primary"
    await eventually(back, timeout=10)
