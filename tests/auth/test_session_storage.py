"""Cookie sessions in Redis only once written (SPEC §4.1): signed ids, nothing stored for anonymous
or bearer traffic, sign-in still stores and rotates, unsigned ids are no session."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp.test_utils import TestClient

from backend import keys
from backend.config import Config
from tests.conftest import AppFactory, UserFactory

COOKIE_PATHS = ("/api/cars", "/profile", "/users", "/chats", "/photos/1", "/api/bookings")


async def stored_sessions(client: TestClient, config: Config) -> list[str]:
    """Every sessid:* key under this test's Redis prefix."""
    pattern = f"{config.redis_prefix}sessid:*"
    return [key.decode() async for key in client.app[keys.REDIS].scan_iter(match=pattern)]


def sessid_of(resp: aiohttp.ClientResponse) -> str | None:
    morsel = resp.cookies.get("sessid")
    return morsel.value if morsel is not None else None


async def test_anonymous_requests_store_no_session(client: TestClient, config: Config) -> None:
    """Regression: every cookie-less request to a cookie surface stored a 30-day session in Redis."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as bare:
        async def fetch(path: str) -> str | None:
            async with bare.get(client.make_url(path)) as resp:
                await resp.read()
                return sessid_of(resp)

        issued = await asyncio.gather(*(fetch(COOKIE_PATHS[n % len(COOKIE_PATHS)]) for n in range(60)))
    # Every answer still hands out a session id (SPEC §4.1), each a new one...
    assert all(issued) and len(set(issued)) == 60
    # ...and none of them was written anywhere.
    assert await stored_sessions(client, config) == []


async def test_an_unstored_id_is_kept_and_bearer_calls_write_nothing(client: TestClient, config: Config,
                                                                    make_user: UserFactory) -> None:
    first = await client.get("/api/cars")
    anonymous = sessid_of(first)
    assert anonymous
    for _ in range(5):                       # a valid id is not replaced, though nothing holds it
        again = await client.get("/profile")
        assert again.status == 401 and "Set-Cookie" not in again.headers
    driver = await make_user()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as bare:
        for path in ("/api/bookings", "/profile", "/users"):
            async with bare.get(client.make_url(path), headers=driver.headers) as resp:
                assert resp.status in (200, 403), path
    assert await stored_sessions(client, config) == []


async def test_sign_in_stores_and_rotates_sign_out_forgets(client: TestClient, config: Config,
                                                           make_user: UserFactory) -> None:
    user = await make_user(role="client")
    anonymous = sessid_of(await client.get("/profile"))
    signin = await client.post("/profile/signin", json={"login": user.login, "password": user.password})
    assert signin.status == 200
    signed = sessid_of(signin)
    assert signed and signed != anonymous                     # rotated: no fixation
    assert await stored_sessions(client, config) == [client.app[keys.REVOCATIONS].session_key(signed)]
    assert (await client.get("/profile")).status == 200

    out = await client.post("/profile/signout")
    assert out.status == 200
    # Signed out: nothing is left to store, yet the id stays usable (no new cookie).
    assert await stored_sessions(client, config) == []
    after = await client.get("/profile")
    assert after.status == 401 and "Set-Cookie" not in after.headers

    again = await client.post("/login", json={"email": user.login, "password": user.password})
    assert again.status == 200
    rotated = sessid_of(again)
    assert rotated and rotated not in (signed, anonymous)
    assert await stored_sessions(client, config) == [client.app[keys.REVOCATIONS].session_key(rotated)]


async def test_an_unsigned_cookie_is_no_cookie(client: TestClient, make_user: UserFactory) -> None:
    """An id the service did not sign is ignored even when Redis holds a session under it, so
    nobody can pick or plant an id (and ids of the old unsigned format are void)."""
    user = await make_user(role="client")
    signin = await client.post("/sign-in", json={"login": user.login, "password": user.password})
    valid = sessid_of(signin)
    assert valid
    redis = client.app[keys.REDIS]
    stored = await redis.get(client.app[keys.REVOCATIONS].session_key(valid))
    random_part, _, mac = valid.partition(".")
    forged = [
        random_part,                                        # no MAC: the old format
        f"{random_part}.{'A' * len(mac)}",                  # a wrong MAC
        f"{random_part[:-1]}{'A' if random_part[-1] != 'A' else 'B'}.{mac}",   # another id, same MAC
        "forged-value",
    ]
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as bare:
        for cookie in forged:
            await redis.set(client.app[keys.REVOCATIONS].session_key(cookie), stored)   # as if someone planted the data
            async with bare.get(client.make_url("/profile"), headers={"Cookie": f"sessid={cookie}"}) as resp:
                assert resp.status == 401, cookie
                fresh = sessid_of(resp)
            assert fresh and fresh != cookie                 # treated as no cookie: a new id
        async with bare.get(client.make_url("/profile"), headers={"Cookie": f"sessid={valid}"}) as resp:
            assert resp.status == 200


async def test_sessions_survive_a_jwt_key_rotation(make_client: AppFactory, config: Config,
                                                   make_user: UserFactory) -> None:
    """The id's MAC key derives from the JWT keys: the first signs, all verify, like tokens."""
    old = await make_client()
    user = await make_user(role="client")
    signin = await old.post("/profile/signin", json={"login": user.login, "password": user.password})
    cookie = {"Cookie": f"sessid={sessid_of(signin)}"}
    rotated = await make_client(jwt_keys=(("k2", "rotated-secret-" + "y" * 32), *config.jwt_keys))
    assert (await rotated.get("/profile", headers=cookie)).status == 200
    stranger = await make_client(jwt_keys=(("k9", "another-deployment-" + "z" * 32),))
    refused = await stranger.get("/profile", headers=cookie)
    assert refused.status == 401 and sessid_of(refused) not in (None, sessid_of(signin))
