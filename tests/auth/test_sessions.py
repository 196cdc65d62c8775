"""Cookie sessions (SPEC §4.1): sessid on cookie surfaces, sign-in rotation, sign-out, revocation."""

from __future__ import annotations

import email.utils
import time

from aiohttp.test_utils import TestClient
from sqlalchemy import update

from backend import keys
from backend.auth.tables import users
from backend.db import make_engine
from tests.conftest import TestUser, UserFactory


def sessid(client: TestClient) -> str | None:
    """The sessid the client's cookie jar holds."""
    for cookie in client.session.cookie_jar:
        if cookie.key == "sessid":
            return cookie.value
    return None


async def sign_in(client: TestClient, user: TestUser, path: str = "/profile/signin") -> dict:
    resp = await client.post(path, json={"login": user.login, "password": user.password})
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_cookie_surface_sets_sessid_with_the_spec_attributes(client: TestClient) -> None:
    resp = await client.get("/profile")
    assert resp.status == 401
    assert await resp.json() == {"detail": "Учетные данные не были предоставлены.", "code": "not_authenticated"}
    header = resp.headers["Set-Cookie"]
    assert header.startswith("sessid=")
    lowered = header.lower()
    assert "httponly" in lowered and "samesite=lax" in lowered and "max-age=2592000" in lowered
    assert "secure" not in lowered.replace("samesite", "")
    # `expires` says the same as Max-Age (formatted once a second, not per response).
    expires = email.utils.parsedate_to_datetime(header.split("expires=")[1].split(";")[0].replace("-", " "))
    assert abs(expires.timestamp() - (time.time() + 2592000)) < 5
    value = sessid(client)
    assert value and len(value) >= 43       # 256 bits, urlsafe base64
    # A valid sessid is kept: no new cookie on the next response.
    again = await client.get("/profile")
    assert "Set-Cookie" not in again.headers
    assert sessid(client) == value


async def test_secure_flag_when_configured(make_client) -> None:
    client = await make_client(cookie_secure=True)
    resp = await client.get("/profile")
    assert "; secure" in resp.headers["Set-Cookie"].lower()


async def test_non_cookie_surface_sets_no_cookie(client: TestClient) -> None:
    resp = await client.get("/health/live")
    assert "Set-Cookie" not in resp.headers


async def test_unknown_sessid_is_replaced(client: TestClient) -> None:
    resp = await client.get("/profile", headers={"Cookie": "sessid=forged-value"})
    assert resp.status == 401
    assert "sessid=" in resp.headers["Set-Cookie"]
    assert "forged-value" not in resp.headers["Set-Cookie"]


async def test_sign_in_rotates_and_sign_out_keeps_the_sessid(client: TestClient, make_user: UserFactory) -> None:
    user = await make_user(role="client", email="c@example.com", phone="89001234567")
    await client.get("/profile")
    anonymous = sessid(client)
    body = await sign_in(client, user)
    assert body == {"id": user.id, "login": user.login, "name": "", "surname": "", "last_name": "",
                    "phone": "+79001234567", "driver_license": None, "role": user.role_id, "deleted_at": None,
                    "email": "c@example.com", "client_status": "approved"}
    signed = sessid(client)
    assert signed and signed != anonymous
    me = await client.get("/profile")
    assert me.status == 200 and (await me.json())["id"] == user.id
    # The anonymous key was dropped, so a fixated cookie cannot ride the sign-in.
    redis = client.app[keys.REDIS]
    assert await redis.exists(client.app[keys.REVOCATIONS].session_key(anonymous)) == 0
    assert await redis.exists(client.app[keys.REVOCATIONS].session_key(signed)) == 1

    out = await client.post("/profile/signout")
    assert out.status == 200
    assert (await out.json())["detail"]
    assert sessid(client) == signed
    after = await client.get("/profile")
    assert after.status == 401
    assert "Set-Cookie" not in after.headers       # the same session, now anonymous


async def test_sign_in_alias_and_identifiers(client: TestClient, make_user: UserFactory) -> None:
    user = await make_user(role="client", email="Mixed@Example.com", phone="+79001112233")
    for login in (user.login.upper(), "mixed@example.com", "89001112233"):
        resp = await client.post("/sign-in", json={"login": login, "password": user.password})
        assert resp.status == 200, login
        assert (await resp.json())["id"] == user.id


async def test_sign_in_errors(client: TestClient, make_user: UserFactory) -> None:
    user = await make_user(role="client")
    bad = await client.post("/profile/signin", json={"login": user.login, "password": "wrong-password"})
    assert bad.status == 401
    assert await bad.json() == {"detail": "Неверный логин или пароль.", "code": "authentication_failed"}
    missing = await client.post("/profile/signin", json={"login": user.login})
    assert missing.status == 400
    assert await missing.json() == {"password": ["Обязательное поле."]}
    form = await client.post("/profile/signin", data={"login": user.login, "password": user.password})
    assert form.status == 415
    assert (await form.json())["code"] == "unsupported_media_type"


async def test_login_failure_limit_applies(client: TestClient, make_user: UserFactory) -> None:
    user = await make_user(role="client")
    for _ in range(5):
        resp = await client.post("/sign-in", json={"login": user.login, "password": "wrong-password"})
        assert resp.status == 401
    resp = await client.post("/sign-in", json={"login": user.login, "password": user.password})
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) > 0


async def test_session_works_on_both_instances(two_apps: tuple[TestClient, TestClient],
                                               make_user: UserFactory) -> None:
    a, b = two_apps
    user = await make_user(role="client")
    await sign_in(a, user)
    cookie = {"Cookie": f"sessid={sessid(a)}"}
    resp = await b.get("/profile", headers=cookie)
    assert resp.status == 200
    assert (await resp.json())["id"] == user.id
    assert (await b.post("/profile/signout", headers=cookie)).status == 200
    assert (await a.get("/profile")).status == 401


async def test_blocked_or_deleted_user_session_refused(client: TestClient, make_user: UserFactory, config) -> None:
    user = await make_user(role="client")
    await sign_in(client, user)
    engine = make_engine(config.database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.begin() as conn:
            await conn.execute(update(users).where(users.c.id == user.id).values(client_status="blocked"))
    finally:
        await engine.dispose()
    resp = await client.get("/profile")
    assert resp.status == 401
    assert (await resp.json())["code"] == "user_inactive"
    # The session was unbound: the user can no longer reach anything, and sign-in says why.
    again = await client.post("/profile/signin", json={"login": user.login, "password": user.password})
    assert again.status == 401
    assert (await again.json())["code"] == "user_inactive"


async def test_password_change_ends_the_session(client: TestClient, make_user: UserFactory, config) -> None:
    user = await make_user(role="client")
    await sign_in(client, user)
    engine = make_engine(config.database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.begin() as conn:     # a manual UPDATE, as an operator might do
            await conn.execute(update(users).where(users.c.id == user.id).values(password_hash="$argon2id$x"))
    finally:
        await engine.dispose()
    resp = await client.get("/profile")
    assert resp.status == 401
    assert (await resp.json())["code"] == "password_changed"
    assert (await client.get("/profile")).status == 401


async def test_end_all_sessions(two_apps: tuple[TestClient, TestClient], make_user: UserFactory) -> None:
    a, b = two_apps
    user = await make_user(role="client")
    other = await make_user(role="client")
    await sign_in(a, user)
    await sign_in(b, user)
    ended = await a.app[keys.REVOCATIONS].kill_sessions(user.id)
    assert ended == 2
    assert (await a.get("/profile")).status == 401
    assert (await b.get("/profile")).status == 401
    # Another user's sessions are untouched.
    await sign_in(a, other)
    assert await a.app[keys.REVOCATIONS].kill_sessions(user.id) == 0
    assert (await a.get("/profile")).status == 200


async def test_revoke_user_kills_tokens_and_sessions(client: TestClient, make_user: UserFactory) -> None:
    user = await make_user(role="client")
    await sign_in(client, user)
    assert (await client.get("/api/auth/me/", headers=user.headers)).status == 200
    await client.app[keys.REVOCATIONS].revoke_everything(user.id)
    assert await client.app[keys.REDIS].get(client.app[keys.REVOCATIONS].revoked_before_key(user.id)) is not None
    assert (await client.get("/profile")).status == 401
    assert (await client.get("/api/auth/me/", headers=user.headers)).status == 401


async def test_bearer_wins_over_the_cookie(client: TestClient, make_user: UserFactory) -> None:
    cookie_user = await make_user(role="client")
    token_user = await make_user(role="driver")
    await sign_in(client, cookie_user)
    resp = await client.get("/profile", headers=token_user.headers)
    assert (await resp.json())["id"] == token_user.id
