"""The /auth/* surface of seed 003 (SPEC §3.3): shapes, 401/403/422, logout and logout-all."""

from __future__ import annotations

import jwt
from aiohttp.test_utils import TestClient

from backend import keys
from tests.auth.test_refresh import login, me, refresh
from tests.conftest import AppFactory, UserFactory

NO_CREDENTIALS = {"detail": "Учетные данные не были предоставлены.", "code": "not_authenticated"}


async def test_login_shape(client: TestClient, make_user: UserFactory) -> None:
    user = await make_user(role="client", email="Guest@Example.com", phone="+79001234567",
                           name="Имя", surname="Фамилия", last_name="Отчество")
    for identifier in ("guest@example.com", "89001234567", user.login.upper()):
        body = await login_as(client, identifier, user.password)
        assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in", "user"}
        assert body["token_type"] == "bearer" and body["expires_in"] == 3600
        assert body["user"] == {"id": user.id, "email": "Guest@Example.com", "role": "client",
                                "first_name": "Имя", "last_name": "Фамилия"}
        claims = jwt.decode(body["access_token"], options={"verify_signature": False})
        assert claims["sub"] == user.id and claims["typ"] == "access"


async def login_as(client: TestClient, identifier: str, password: str) -> dict:
    resp = await client.post("/auth/login", json={"identifier": identifier, "password": password})
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_login_errors_are_422_detail_style(client: TestClient, make_user: UserFactory) -> None:
    user = await make_user()
    wrong = await client.post("/auth/login", json={"identifier": user.login, "password": "wrong-password"})
    assert wrong.status == 422
    assert await wrong.json() == {"detail": "Неверный логин или пароль.", "code": "authentication_failed"}
    missing = await client.post("/auth/login", json={"identifier": user.login})
    assert missing.status == 422
    body = await missing.json()
    assert body["code"] == "validation_error"
    assert body["errors"] == [{"field": "password", "message": "Обязательное поле."}]
    broken = await client.post("/auth/login", data=b"{not json", headers={"Content-Type": "application/json"})
    assert broken.status == 422 and "detail" in await broken.json()


async def test_me_shape_and_401s(client: TestClient, make_user: UserFactory) -> None:
    user = await make_user(role="admin", email="a@example.com", name="Анна", surname="Петрова")
    resp = await client.get("/auth/me", headers=user.headers)
    assert resp.status == 200
    assert await resp.json() == {"id": user.id, "email": "a@example.com", "role": "admin",
                                 "first_name": "Анна", "last_name": "Петрова"}
    anonymous = await client.get("/auth/me")
    assert anonymous.status == 401 and await anonymous.json() == NO_CREDENTIALS
    bad = await client.get("/auth/me", headers={"Authorization": "Bearer nope"})
    assert bad.status == 401 and (await bad.json())["code"] == "token_not_valid"
    basic = await client.get("/auth/me", headers={"Authorization": "Basic abc"})
    assert basic.status == 401


async def test_403_when_authenticated_but_not_permitted(client: TestClient, make_user: UserFactory) -> None:
    driver = await make_user(role="driver")
    resp = await client.get("/api/permissions/", headers=driver.headers)
    assert resp.status == 403
    assert (await resp.json())["code"] == "permission_denied"


async def test_logout_on_a_is_refused_on_b_at_once(two_apps: tuple[TestClient, TestClient],
                                                   make_user: UserFactory) -> None:
    a, b = two_apps
    user = await make_user()
    pair = await login(a, user)
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    assert await me(b, pair["access_token"]) == 200
    out = await a.post("/auth/logout", headers=headers)
    assert out.status == 200 and set(await out.json()) == {"detail"}
    assert await me(b, pair["access_token"]) == 401
    assert (await b.get("/api/auth/me/", headers=headers)).status == 401
    # Its refresh family died with it; other tokens of the user live on.
    assert (await refresh(b, pair["refresh_token"]))[0] == 401
    assert await me(b, user.token) == 200
    # The deny entry expires with the token (TTL = remaining lifetime + leeway), not never.
    ttl = await a.app[keys.REDIS].ttl(a.app[keys.REVOCATIONS].deny_key(jwt.decode(pair["access_token"],
                                                                 options={"verify_signature": False})["jti"]))
    assert 3600 <= ttl <= 3600 + 31


async def test_logout_after_refresh_revokes_the_family(client: TestClient, make_user: UserFactory) -> None:
    user = await make_user()
    first = await login(client, user)
    _, second = await refresh(client, first["refresh_token"])
    out = await client.post("/auth/logout", headers={"Authorization": f"Bearer {second['access_token']}"})
    assert out.status == 200
    assert (await refresh(client, second["refresh_token"]))[0] == 401
    assert await me(client, first["access_token"]) == 401          # the family's earlier access token too


async def test_logout_needs_a_bearer_token(client: TestClient) -> None:
    resp = await client.post("/auth/logout")
    assert resp.status == 401 and await resp.json() == NO_CREDENTIALS
    bad = await client.post("/auth/logout?all=maybe", headers={"Authorization": "Bearer x"})
    assert bad.status in (401, 422)


async def test_logout_all_kills_tokens_refresh_and_cookie_sessions(make_client: AppFactory,
                                                                   make_user: UserFactory) -> None:
    a, b, browser = await make_client(), await make_client(), await make_client()
    user = await make_user(role="client")
    phone_pair, laptop_pair = await login(a, user), await login(b, user)
    signed = await browser.post("/profile/signin", json={"login": user.login, "password": user.password})
    assert signed.status == 200
    assert (await browser.get("/profile")).status == 200
    out = await a.post("/auth/logout?all=true", headers={"Authorization": f"Bearer {phone_pair['access_token']}"})
    assert out.status == 200
    for client in (a, b):
        assert await me(client, laptop_pair["access_token"]) == 401
        assert await me(client, phone_pair["access_token"]) == 401
        assert await me(client, user.token) == 401
    assert (await refresh(b, laptop_pair["refresh_token"]))[0] == 401
    assert (await browser.get("/profile")).status == 401
    assert not await a.app[keys.REDIS].exists(a.app[keys.REVOCATIONS].user_sessions_key(user.id))
    # Signing in again right away (same second) works.
    fresh = await login(b, user)
    assert await me(a, fresh["access_token"]) == 200
    assert (await refresh(a, fresh["refresh_token"]))[0] == 200


async def test_revocation_orders_sockets_closed_on_the_control_channel(client: TestClient, make_user: UserFactory) -> None:
    assert keys.BUS in client.app
    user = await make_user()
    pair = await login(client, user)
    seen: list[tuple[str, str, dict]] = []
    bus = client.app[keys.BUS]
    original = bus.publish_control

    async def spy(target: str, action: str, **data: object) -> None:
        seen.append((target, action, data))
        await original(target, action, **data)

    bus.publish_control = spy  # type: ignore[method-assign]
    try:
        jti = jwt.decode(pair["access_token"], options={"verify_signature": False})["jti"]
        await client.post("/auth/logout", headers={"Authorization": f"Bearer {pair['access_token']}"})
        await client.post("/auth/logout?all=true", headers=user.headers)
    finally:
        bus.publish_control = original  # type: ignore[method-assign]
    assert (f"user:{user.id}", "revoke", {"jti": jti}) in seen
    assert (f"user:{user.id}", "revoke", {"jti": None}) in seen


async def test_seed_001_login_right_after_logout_all(client: TestClient, make_user: UserFactory) -> None:
    user = await make_user()
    assert (await client.post("/auth/logout?all=true", headers=user.headers)).status == 200
    # Same second as the revocation: the new token must not fall under it.
    resp = await client.post("/api/auth/login/", json={"login": user.login, "password": user.password})
    token = (await resp.json())["access"]
    assert (await client.get("/api/auth/me/", headers={"Authorization": f"Bearer {token}"})).status == 200
