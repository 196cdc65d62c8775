"""Chats and messages (SPEC §7.3, §11.24): one chat per pair, history pages, idempotent sends, reads."""

from __future__ import annotations

import asyncio

import asyncpg
from aiohttp.test_utils import TestClient

from backend import keys
from tests.chat.conftest import count_chats, count_messages, open_chat, send
from tests.conftest import TestUser, UserFactory
from tests.support import eventually

CHAT_KEYS = {"id", "members", "closed", "last_message", "unread_count", "created_at", "updated_at"}
MESSAGE_KEYS = {"id", "chat_id", "sender_id", "text", "client_id", "created_at"}


async def test_the_pair_has_one_chat(client: TestClient, alice: TestUser, bob: TestUser) -> None:
    resp = await client.post("/chats", json={"user_id": bob.id}, headers=alice.headers)
    assert resp.status == 201
    chat = await resp.json()
    assert set(chat) == CHAT_KEYS and chat["created_at"].endswith("Z")
    assert chat["members"] == [{"id": alice.id, "username": "alice", "name": "Alice"},
                               {"id": bob.id, "username": "bob", "name": "Bob"}]
    again = await client.post("/chats", json={"user_id": bob.id}, headers=alice.headers)
    other_side = await client.post("/chats", json={"user_id": alice.id}, headers=bob.headers)
    assert (again.status, other_side.status) == (200, 200)
    assert (await again.json())["id"] == (await other_side.json())["id"] == chat["id"]
    assert await count_chats(client) == 1


async def test_yourself_and_unknown_users_are_400(client: TestClient, alice: TestUser) -> None:
    for user_id, code in ((alice.id, "chat_with_self"), (999999, "user_not_found")):
        resp = await client.post("/chats", json={"user_id": user_id}, headers=alice.headers)
        assert resp.status == 400
        assert (await resp.json())["error"] == code
    assert (await client.post("/chats", json={"user_id": 1})).status == 401
    assert await count_chats(client) == 0


async def test_concurrent_opens_from_both_sides_on_two_instances(two_apps: tuple[TestClient, TestClient],
                                                                 make_user: UserFactory) -> None:
    a, b = two_apps
    for _ in range(5):
        one, two = await make_user(role="client"), await make_user(role="client")
        replies = await asyncio.gather(a.post("/chats", json={"user_id": two.id}, headers=one.headers),
                                       b.post("/chats", json={"user_id": one.id}, headers=two.headers),
                                       b.post("/chats", json={"user_id": two.id}, headers=one.headers),
                                       a.post("/chats", json={"user_id": one.id}, headers=two.headers))
        assert sorted(r.status for r in replies) == [200, 200, 200, 201]
        assert len({(await r.json())["id"] for r in replies}) == 1
    assert await count_chats(a) == 5


async def test_chat_list_is_most_recent_first_with_unread_counts(client: TestClient, alice: TestUser,
                                                                  bob: TestUser, carol: TestUser) -> None:
    with_bob = await open_chat(client, alice, bob)
    with_carol = await open_chat(client, alice, carol)
    await send(client, bob, with_bob["id"], "hi alice")
    first = await send(client, carol, with_carol["id"], "hello")
    await send(client, carol, with_carol["id"], "are you there?")
    await send(client, alice, with_carol["id"], "yes")
    last = await send(client, bob, with_bob["id"], "ping")
    listed = (await (await client.get("/chats", headers=alice.headers)).json())["chats"]
    assert [c["id"] for c in listed] == [with_bob["id"], with_carol["id"]]
    assert listed[0]["last_message"] == last and listed[0]["unread_count"] == 2
    assert listed[1]["unread_count"] == 2                      # her own "yes" is not unread
    resp = await client.post(f"/chats/{with_carol['id']}/read", json={"message_id": first["id"]},
                             headers=alice.headers)
    assert await resp.json() == {"chat_id": with_carol["id"], "user_id": alice.id, "message_id": first["id"],
                                 "unread_count": 1}
    bobs = (await (await client.get("/chats", headers=bob.headers)).json())["chats"]
    assert [(c["id"], c["unread_count"]) for c in bobs] == [(with_bob["id"], 0)]
    assert (await client.get("/chats")).status == 401


async def test_history_pages_are_ascending(client: TestClient, alice: TestUser, bob: TestUser) -> None:
    chat = await open_chat(client, alice, bob)
    sent = [await send(client, alice if n % 2 else bob, chat["id"], f"m{n}") for n in range(7)]
    ids = [m["id"] for m in sent]

    async def page(**query: int) -> list[int]:
        resp = await client.get(f"/chats/{chat['id']}/messages", params=query, headers=bob.headers)
        assert resp.status == 200, await resp.text()
        return [m["id"] for m in (await resp.json())["messages"]]

    assert await page(limit=3) == ids[4:]
    assert await page(before=ids[4], limit=3) == ids[1:4]
    assert await page(before=ids[1], limit=3) == ids[:1]
    assert await page(after=ids[1], limit=3) == ids[2:5]
    assert await page(after=ids[1], before=ids[3]) == [ids[2]]
    assert await page(after=ids[6]) == []
    assert await page() == ids                                 # default limit 50
    whole = (await (await client.get(f"/chats/{chat['id']}/messages", headers=alice.headers)).json())["messages"]
    assert whole == sent and set(whole[0]) == MESSAGE_KEYS


async def test_only_members_read_or_write(client: TestClient, alice: TestUser, bob: TestUser,
                                          carol: TestUser) -> None:
    chat = await open_chat(client, alice, bob)
    message = await send(client, alice, chat["id"], "private")
    path = f"/chats/{chat['id']}"
    for method, suffix, body in (("GET", "/messages", None), ("POST", "/messages", {"text": "x"}),
                                 ("POST", "/read", {"message_id": message["id"]})):
        resp = await client.request(method, path + suffix, json=body, headers=carol.headers)
        assert resp.status == 403, suffix
        assert (await resp.json())["error"] == "forbidden"
        unknown = await client.request(method, "/chats/999999" + suffix, json=body, headers=carol.headers)
        assert (unknown.status, (await unknown.json())["error"]) == (400, "chat_not_found")
    assert await count_messages(client) == 1


async def test_a_retried_send_is_the_same_message(client: TestClient, alice: TestUser, bob: TestUser) -> None:
    chat = await open_chat(client, alice, bob)
    first = await send(client, alice, chat["id"], "once", client_id="c-1")
    retry = await send(client, alice, chat["id"], "once", client_id="c-1", status=200)
    assert retry == first and first["client_id"] == "c-1"
    # The key is per sender and per chat: bob may use the same client_id.
    await send(client, bob, chat["id"], "his own", client_id="c-1")
    assert await count_messages(client) == 2


async def test_concurrent_duplicates_make_one_row(two_apps: tuple[TestClient, TestClient], alice: TestUser,
                                                  bob: TestUser) -> None:
    a, b = two_apps
    chat = await open_chat(a, alice, bob)
    body = {"text": "exactly once", "client_id": "dup-42"}
    path = f"/chats/{chat['id']}/messages"
    replies = await asyncio.gather(*(app.post(path, json=body, headers=alice.headers) for app in (a, b) * 4))
    assert sorted(r.status for r in replies) == [200] * 7 + [201]
    assert len({(await r.json())["id"] for r in replies}) == 1
    assert await count_messages(a) == 1


async def test_concurrent_senders_on_two_instances_commit_in_id_order(two_apps: tuple[TestClient, TestClient],
                                                                    alice: TestUser, bob: TestUser) -> None:
    """The chat row lock orders writers: a reader following with `after=` while both members send on
    both instances sees every message once, in id order, and the chat's last message is the newest."""
    a, b = two_apps
    chat = await open_chat(a, alice, bob)
    path = f"/chats/{chat['id']}/messages"
    senders = [(app, user, f"{user.login}-{app is a}-{n}") for n in range(8) for app in (a, b) for user in (alice, bob)]
    seen: list[int] = []

    async def follow() -> None:
        while len(seen) < len(senders):
            query = {"after": seen[-1]} if seen else {}
            resp = await b.get(path, params=query, headers=bob.headers)
            assert resp.status == 200, await resp.text()
            seen.extend(m["id"] for m in (await resp.json())["messages"])

    follower = asyncio.create_task(follow())
    sent = await asyncio.gather(*(send(app, user, chat["id"], text) for app, user, text in senders))
    await asyncio.wait_for(follower, 10)
    assert seen == sorted(m["id"] for m in sent)            # none skipped, none twice
    listed = (await (await a.get("/chats", headers=alice.headers)).json())["chats"]
    newest = max(sent, key=lambda m: m["id"])
    assert listed[0]["last_message"] == newest and listed[0]["updated_at"] == newest["created_at"]


async def test_a_send_that_waited_for_the_chat_gets_an_id_after_the_writer_it_waited_for(
        client: TestClient, alice: TestUser, bob: TestUser) -> None:
    """Ids grow in commit order: a send takes the chat row lock before it takes an id, so a writer
    holding the chat commits a smaller id than the send queued behind it."""
    chat = await open_chat(client, alice, bob)
    config = client.app[keys.CONFIG]
    assert config.database_url is not None
    writer = await asyncpg.connect(config.database_url)
    try:
        async with writer.transaction():
            await writer.execute("SELECT 1 FROM chats WHERE id = $1 FOR UPDATE", chat["id"])
            sending = asyncio.create_task(send(client, alice, chat["id"], "queued"))

            async def queued() -> None:
                assert await writer.fetchval("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                                             " AND datname = current_database()") == 1
            await eventually(queued)
            first = await writer.fetchval("INSERT INTO messages (chat_id, sender_id, text) VALUES ($1, $2, 'first')"
                                          " RETURNING id", chat["id"], bob.id)
            await writer.execute("UPDATE chats SET last_message_id = $2 WHERE id = $1", chat["id"], first)
        sent = await asyncio.wait_for(sending, 5)
    finally:
        await writer.close()
    assert sent["id"] > first
    listed = (await (await client.get("/chats", headers=alice.headers)).json())["chats"]
    assert listed[0]["last_message"] == sent


async def test_read_position_never_moves_back(client: TestClient, alice: TestUser, bob: TestUser,
                                              carol: TestUser) -> None:
    chat = await open_chat(client, alice, bob)
    other = await open_chat(client, carol, bob)
    sent = [await send(client, alice, chat["id"], f"m{n}") for n in range(3)]
    foreign = await send(client, carol, other["id"], "elsewhere")
    path = f"/chats/{chat['id']}/read"

    async def read_up_to(message_id: int) -> dict[str, int]:
        resp = await client.post(path, json={"message_id": message_id}, headers=bob.headers)
        assert resp.status == 200, await resp.text()
        return await resp.json()

    assert (await read_up_to(sent[2]["id"]))["message_id"] == sent[2]["id"]
    back = await read_up_to(sent[0]["id"])
    assert (back["message_id"], back["unread_count"]) == (sent[2]["id"], 0)
    resp = await client.post(path, json={"message_id": foreign["id"]}, headers=bob.headers)
    assert (resp.status, (await resp.json())["error"]) == (400, "message_not_found")


async def test_the_cookie_session_works_on_chat_paths(client: TestClient, bob: TestUser) -> None:
    resp = await client.post("/users", json={"email": "dana@example.com", "password": "long-enough-1"})
    assert resp.status == 201
    login = await client.post("/login", json={"email": "dana@example.com", "password": "long-enough-1"})
    assert login.status == 200
    chat = await client.post("/chats", json={"user_id": bob.id})          # no bearer: the sessid cookie
    assert chat.status == 201
    chat_id = (await chat.json())["id"]
    evil = await client.post(f"/chats/{chat_id}/messages", json={"text": "csrf"},
                             headers={"Origin": "https://evil.example"})
    assert (evil.status, (await evil.json())["error"]) == (403, "origin_not_allowed")
    sent = await client.post(f"/chats/{chat_id}/messages", json={"text": "hi bob"})
    assert sent.status == 201
    assert await count_messages(client) == 1
