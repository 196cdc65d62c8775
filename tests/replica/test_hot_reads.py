"""Lag-tolerant reads on the raw asyncpg pool (backend.db.hot_read, chat history pages): the same rules
as read() on a real streaming replica (SPEC §13.2) — the replica for lag-tolerant reads, the primary
after a write of the same request, and the primary, without a 5xx, when the replica is lost before or
under a read."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient

from backend import keys
from backend.chat import messages
from backend.db import hot_read, wrote
from tests.chat.conftest import open_chat, send
from tests.conftest import AppFactory, UserFactory
from tests.replica.conftest import Standby, answered_by_replica, lose_replica_under, with_probe
from tests.support import eventually


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
    assert await answered_by_replica(probed, hot=1, write=1) is False
    assert await answered_by_replica(probed, hot=1) is True      # the next request is a new task


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
    assert await answered_by_replica(probed, hot=1)                # a pooled replica connection exists
    standby.stop()
    try:
        message = await send(probed, alice, chat["id"], "while the replica is away")
        for _ in range(2):                                  # the lost connection, then a refused connect
            resp = await probed.get(f"/chats/{chat['id']}/messages", headers=bob.headers)
            assert resp.status == 200, await resp.text()
            assert [m["id"] for m in (await resp.json())["messages"]] == [message["id"]]
        assert await answered_by_replica(probed, hot=1) is False
    finally:
        standby.start()

    async def back() -> None:
        assert await answered_by_replica(probed, hot=1), "still reading from the primary"
    await eventually(back, timeout=10)


async def test_a_replica_lost_under_a_running_hot_read_repeats_it_on_the_primary(
        probed: TestClient, standby: Standby) -> None:
    assert await answered_by_replica(probed, hot=1)
    assert await lose_replica_under(standby, answered_by_replica(probed, hot=1, pause=5)) is False   # the primary answered


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
        assert await answered_by_replica(client, hot=1), "still reading from the primary"
    await eventually(back, timeout=10)
