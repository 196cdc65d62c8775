"""Cookie sessions checked in batches (issue 11): concurrent cookie requests share the Redis read of
their sessions and the identity query with each other and with bearer checks, and each is still
judged on its own session (SPEC §4.1, §2.1)."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient
from sqlalchemy import update

from backend import keys
from backend.auth import resolve
from backend.auth.tables import users
from backend.db import transaction
from tests.conftest import TestUser, UserFactory


async def signed_in_cookie(client: TestClient, user: TestUser) -> dict[str, str]:
    resp = await client.post("/profile/signin", json={"login": user.login, "password": user.password})
    assert resp.status == 200, await resp.text()
    cookie = {"sessid": resp.cookies["sessid"].value}
    client.session.cookie_jar.clear()          # each request below carries only its own cookie
    return cookie


async def test_concurrent_cookie_requests_are_judged_each_on_its_own_session(
        client: TestClient, make_user: UserFactory) -> None:
    good = [await make_user(role="client") for _ in range(4)]
    blocked, new_password, signed_out = [await make_user(role="client") for _ in range(3)]
    cookies = {user.login: await signed_in_cookie(client, user) for user in [*good, blocked, new_password, signed_out]}
    assert (await client.post("/profile/signout", cookies=cookies[signed_out.login])).status == 200
    client.session.cookie_jar.clear()
    async with transaction(client.app[keys.DB]) as conn:
        await conn.execute(update(users).where(users.c.id == blocked.id).values(client_status="blocked"))
        await conn.execute(update(users).where(users.c.id == new_password.id)
                           .values(password_hash="$argon2id$v=19$m=65536,t=3,p=4$changed$changed"))
    # Twice over, all at once, with bearer requests in the same batches.
    order = [*good, blocked, new_password, signed_out] * 2
    cookie_reads = [client.get("/profile", cookies=cookies[user.login]) for user in order]
    bearer_reads = [client.get("/api/auth/me/", headers=user.headers) for user in good]
    answers = await asyncio.gather(*cookie_reads, *bearer_reads)
    verdicts = {}
    for user, resp in zip(order, answers, strict=False):
        body = await resp.json()
        verdicts[user.login] = (resp.status, body.get("id") if resp.status == 200 else body["code"])
    assert verdicts == {**{user.login: (200, user.id) for user in good},
                        blocked.login: (401, "user_inactive"), new_password.login: (401, "password_changed"),
                        signed_out.login: (401, "not_authenticated")}
    assert [resp.status for resp in answers[len(order):]] == [200] * len(good)


async def test_session_reads_share_the_batch_of_bearer_checks(client: TestClient, make_user: UserFactory) -> None:
    app = client.app
    user = await make_user()
    names = app[keys.REVOCATIONS]
    session_keys = [names.session_key("one"), names.session_key("two")]
    await app[keys.REDIS].set(session_keys[0], b'{"uid": 1}', ex=60)
    reads = await asyncio.gather(resolve.lookup(app, None, session_keys[0]), resolve.lookup(app, None, session_keys[1]),
                                 resolve.lookup(app, user.id, names.deny_key(user.jti)))
    assert reads[0] is reads[1] is reads[2]                          # one MGET, one identity query
    assert reads[0].values == {session_keys[0]: b'{"uid": 1}', session_keys[1]: None,
                               names.deny_key(user.jti): None}
    assert set(reads[0].identities) == {user.id}
    # Sessions alone make no identity query: it would wait here for a connection of the full pool.
    pool = app[keys.HOT_DB]
    held = [await pool.acquire() for _ in range(pool.get_max_size())]
    try:
        alone = await asyncio.wait_for(resolve.lookup(app, None, session_keys[0]), 2)
    finally:
        for conn in held:
            await pool.release(conn)
    assert alone.values == {session_keys[0]: b'{"uid": 1}'} and alone.identities == {}


async def test_me_answers_a_cookie_session_from_its_identity_check(client: TestClient, make_user: UserFactory) -> None:
    """/api/auth/me/ reuses the identity the session check read, as for a bearer: the same body."""
    user = await make_user(role="client", phone="89001234567")
    cookie = await signed_in_cookie(client, user)
    by_cookie = await client.get("/api/auth/me/", cookies=cookie)
    client.session.cookie_jar.clear()
    by_bearer = await client.get("/api/auth/me/", headers=user.headers)
    assert by_cookie.status == by_bearer.status == 200
    assert await by_cookie.json() == await by_bearer.json()
    assert (await by_cookie.json())["id"] == user.id
