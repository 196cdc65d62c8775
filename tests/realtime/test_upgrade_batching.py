"""Authenticated upgrades checked in batches (issue 11): concurrent upgrades share one deny-list MGET
and one identity query, and each is still judged on its own token (SPEC §2.1, §8.1)."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import WSServerHandshakeError
from aiohttp.test_utils import TestClient
from sqlalchemy import update

from backend import keys
from backend.auth import resolve
from backend.auth.tables import users
from backend.db import transaction
from backend.errors import ApiError
from tests.conftest import TestUser, UserFactory
from tests.realtime.conftest import subscribe


async def upgrade(client: TestClient, user: TestUser) -> int:
    """The upgrade's status: 101 once the socket answers a subscribe, else the refusal's."""
    try:
        async with client.ws_connect("/ws", headers=user.headers) as ws:
            assert (await subscribe(ws, "news"))["type"] == "subscribed"
            await ws.send_json({"type": "subscribe", "channel": f"user:{user.id}", "id": 2})
            return 101
    except WSServerHandshakeError as refused:
        return refused.status


async def test_concurrent_upgrades_are_judged_each_on_its_own_token(rt_client, make_user: UserFactory) -> None:
    client = await rt_client()
    app = client.app
    good = [await make_user(role="client") for _ in range(4)]
    revoked, all_revoked, blocked, new_password = [await make_user(role="client") for _ in range(4)]
    revocations = app[keys.REVOCATIONS]
    await revocations.deny_access(revoked.jti)                     # one logged-out token
    await revocations.revoke_everything(all_revoked.id)            # logout ?all=true
    async with transaction(app[keys.DB]) as conn:
        await conn.execute(update(users).where(users.c.id == blocked.id).values(client_status="blocked"))
        await conn.execute(update(users).where(users.c.id == new_password.id)
                           .values(password_hash="$argon2id$v=19$m=65536,t=3,p=4$changed$changed"))
    # Twice over, all at once, in shuffled order: the same batches hold good and bad tokens.
    order = [*good, revoked, all_revoked, blocked, new_password] * 2
    order = order[1::2] + order[::2]
    statuses = await asyncio.gather(*(upgrade(client, user) for user in order))
    verdicts = {user.login: status for user, status in zip(order, statuses, strict=True)}
    assert verdicts == {**{user.login: 101 for user in good}, revoked.login: 401, all_revoked.login: 401,
                        blocked.login: 401, new_password.login: 401}


async def test_lookups_of_one_tick_share_one_read(rt_client, make_user: UserFactory) -> None:
    client = await rt_client()
    app = client.app
    first, second = await make_user(), await make_user()
    names = app[keys.REVOCATIONS]
    reads = await asyncio.gather(*(resolve.lookup(app, user.id, names.deny_key(user.jti))
                                   for user in (first, second, first)))
    assert reads[0] is reads[1] is reads[2]                         # one MGET, one query
    assert set(reads[0].identities) == {first.id, second.id}
    assert reads[0].values == {names.deny_key(first.jti): None, names.deny_key(second.jti): None}


async def test_a_lookup_never_joins_a_read_already_sent(rt_client, make_user: UserFactory) -> None:
    """A logout completed before a request arrives is seen by it, even while another batch is read:
    the request is read in the next batch, sent when that read ends or, as here, when it is slow."""
    client = await rt_client()
    app = client.app
    user = await make_user()
    pool = app[keys.HOT_DB]
    held = [await pool.acquire() for _ in range(pool.get_max_size())]   # the first read waits for one
    try:
        earlier = asyncio.ensure_future(resolve.identity_from_access_token(app, user.token))
        await asyncio.sleep(0.1)             # sent: its MGET is answered, its query waits
        await app[keys.REVOCATIONS].deny_access(user.jti)
        later = asyncio.ensure_future(resolve.identity_from_access_token(app, user.token))
        await asyncio.sleep(0.1)
        assert not earlier.done() and not later.done()
        # The stuck read did not hold the next batch past MAX_WAIT: both are being read.
        assert resolve._readers[app].reading == 2
    finally:
        for conn in held:
            await pool.release(conn)
    identity, _ = await earlier              # read before the logout
    assert identity.id == user.id
    try:
        await later
    except ApiError as refused:
        assert (refused.status, refused.code) == (401, "token_not_valid")
    else:
        raise AssertionError("a token denied before the lookup was accepted")


async def test_a_caller_that_goes_away_does_not_cancel_the_others(rt_client, make_user: UserFactory) -> None:
    client = await rt_client()
    app = client.app
    users_ = [await make_user() for _ in range(3)]
    checks = [asyncio.ensure_future(resolve.identity_from_access_token(app, user.token)) for user in users_]
    await asyncio.sleep(0)
    checks[0].cancel()                       # a client hung up mid-check
    results = await asyncio.gather(*checks, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError)
    assert [identity.id for identity, _ in results[1:]] == [user.id for user in users_[1:]]


async def test_a_burst_of_upgrades_larger_than_a_batch(rt_client, make_user: UserFactory) -> None:
    """More lookups than MAX_BATCH at once: split into several reads, every one answered."""
    client = await rt_client()
    app = client.app
    user = await make_user()
    checks = await asyncio.gather(*(resolve.identity_from_access_token(app, user.token)
                                    for _ in range(resolve.MAX_BATCH * 2 + 3)))
    assert {identity.id for identity, _ in checks} == {user.id}
    assert app not in resolve._readers                # nothing kept once the burst is over


async def test_socket_rights_recheck_reads_users_in_batches(rt_client, make_user: UserFactory) -> None:
    """A role's change re-checks every socket of its users at once; a blocked one is closed."""
    client = await rt_client()
    app = client.app
    kept, blocked = await make_user(role="operator"), await make_user(role="operator")
    async with client.ws_connect("/ws", headers=kept.headers) as kept_ws, \
            client.ws_connect("/ws", headers=blocked.headers) as blocked_ws:
        assert (await subscribe(kept_ws, "dashboard"))["type"] == "subscribed"
        assert (await subscribe(blocked_ws, "dashboard"))["type"] == "subscribed"
        async with transaction(app[keys.DB]) as conn:
            await conn.execute(update(users).where(users.c.id == blocked.id).values(client_status="blocked"))
        await app[keys.REVOCATIONS].role_rights_changed(kept.role_id)
        while (message := await blocked_ws.receive(timeout=5)).type is aiohttp.WSMsgType.TEXT:
            pass
        assert message.type is aiohttp.WSMsgType.CLOSE and message.data == 4001
        await kept_ws.send_json({"type": "ping", "id": 9})
        reply = await kept_ws.receive_json(timeout=5)
        while reply["type"] == "event":
            reply = await kept_ws.receive_json(timeout=5)
        assert reply == {"type": "pong", "id": 9}
