"""Access JWTs (SPEC §3.1): claims, pinned algorithm, kid rotation, expiry, deny-list, password change."""

from __future__ import annotations

import base64
import dataclasses
import json
import time
import uuid
from typing import TYPE_CHECKING

import jwt
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import update

from backend import keys
from backend.auth.passwords import hash_password, password_fingerprint
from backend.auth.tables import users
from backend.config import Config
from backend.db import make_engine
from tests.conftest import AppFactory, UserFactory

if TYPE_CHECKING:
    from tests.conftest import TestUser

PASSWORD_CHANGED = {"detail": "Пароль был изменён. Авторизуйтесь снова.", "code": "password_changed"}


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def claims_of(user: TestUser, config: Config, **changes: object) -> dict:
    """The claims of `user`'s token (verified), with `changes` applied."""
    payload = jwt.decode(user.token, config.jwt_keys[0][1], algorithms=["HS256"], options={"verify_sub": False})
    return {**payload, **changes}


async def me_status(client: TestClient, token: str) -> tuple[int, dict]:
    resp = await client.get("/api/auth/me/", headers={"Authorization": f"Bearer {token}"})
    return resp.status, await resp.json()


async def set_password_hash(config: Config, user_id: int, password: str) -> None:
    """A manual UPDATE in the database, bypassing the application."""
    assert config.database_url
    engine = make_engine(config.database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.begin() as conn:
            await conn.execute(update(users).where(users.c.id == user_id)
                               .values(password_hash=await hash_password(config, password)))
    finally:
        await engine.dispose()


async def test_login_token_has_exactly_the_seed_claims(client: TestClient, config: Config,
                                                       make_user: UserFactory) -> None:
    user = await make_user(role="driver")
    resp = await client.post("/api/auth/login/", json={"login": user.login, "password": user.password,
                                                       "client": "mobile"})
    assert resp.status == 200
    body = await resp.json()
    kid, secret = config.jwt_keys[0]
    assert jwt.get_unverified_header(body["access"]) == {"alg": "HS256", "typ": "JWT", "kid": kid}
    claims = jwt.decode(body["access"], secret, algorithms=["HS256"], options={"verify_sub": False})
    assert set(claims) == {"sub", "login", "role", "client", "pwd_fp", "iat", "exp", "jti", "typ"}
    assert claims["sub"] == user.id and isinstance(claims["sub"], int)
    assert (claims["login"], claims["role"], claims["client"], claims["typ"]) == (user.login, user.role_id,
                                                                                  "mobile", "access")
    assert claims["exp"] - claims["iat"] == int(config.access_ttl)
    assert abs(claims["iat"] - time.time()) < 5
    uuid.UUID(claims["jti"])
    assert len(claims["pwd_fp"]) == 16
    assert body["user"] == {"id": user.id, "login": user.login, "role": user.role_id, "name": "", "surname": "",
                            "last_name": ""}
    assert (await me_status(client, body["access"]))[0] == 200


async def test_api_login_client_default_and_bad_value(client: TestClient, config: Config,
                                                      make_user: UserFactory) -> None:
    user = await make_user()
    resp = await client.post("/api/auth/login/", json={"login": user.login, "password": user.password})
    token = (await resp.json())["access"]
    assert jwt.decode(token, config.jwt_keys[0][1], algorithms=["HS256"],
                      options={"verify_sub": False})["client"] == "web"
    bad = await client.post("/api/auth/login/", json={"login": user.login, "password": user.password,
                                                      "client": "desktop"})
    assert bad.status == 400
    assert list(await bad.json()) == ["client"]


async def test_api_login_bad_credentials_is_401_drf(client: TestClient, make_user: UserFactory) -> None:
    user = await make_user()
    resp = await client.post("/api/auth/login/", json={"login": user.login, "password": "wrong-password"})
    assert resp.status == 401
    assert await resp.json() == {"detail": "Неверный логин или пароль.", "code": "authentication_failed"}
    unknown = await client.post("/api/auth/login/", json={"login": "nobody", "password": "wrong-password"})
    assert unknown.status == 401


async def test_alg_none_is_refused(client: TestClient, config: Config, make_user: UserFactory) -> None:
    user = await make_user()
    forged = f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': 'k1'})}.{_b64(claims_of(user, config))}."
    assert (await me_status(client, forged))[0] == 401
    also = jwt.encode(claims_of(user, config), None, algorithm="none", headers={"kid": config.jwt_keys[0][0]})
    assert (await me_status(client, also))[0] == 401


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_other_algorithm_with_the_right_key_is_refused(client: TestClient, config: Config,
                                                             make_user: UserFactory) -> None:
    user = await make_user()
    kid, secret = config.jwt_keys[0]
    token = jwt.encode(claims_of(user, config), secret, algorithm="HS512", headers={"kid": kid})
    assert (await me_status(client, token))[0] == 401


async def test_tampered_signature_and_payload(client: TestClient, config: Config, make_user: UserFactory) -> None:
    user = await make_user()
    head, payload, signature = user.token.split(".")
    flipped = signature[:-2] + ("AA" if not signature.endswith("AA") else "BB")
    assert (await me_status(client, f"{head}.{payload}.{flipped}"))[0] == 401
    other = _b64(claims_of(user, config, role=1))
    status, body = await me_status(client, f"{head}.{other}.{signature}")
    assert status == 401 and body["code"] == "token_not_valid"
    assert (await me_status(client, "garbage"))[0] == 401


async def test_wrong_or_missing_kid(client: TestClient, config: Config, make_user: UserFactory) -> None:
    user = await make_user()
    secret = config.jwt_keys[0][1]
    unknown = jwt.encode(claims_of(user, config), secret, algorithm="HS256", headers={"kid": "k9"})
    assert (await me_status(client, unknown))[0] == 401
    missing = jwt.encode(claims_of(user, config), secret, algorithm="HS256")
    assert (await me_status(client, missing))[0] == 401


async def test_expired_token_is_refused_after_the_leeway(client: TestClient, config: Config,
                                                         make_user: UserFactory) -> None:
    user = await make_user()
    kid, secret = config.jwt_keys[0]
    now = int(time.time())
    expired = jwt.encode(claims_of(user, config, iat=now - 4000, exp=now - 60), secret, algorithm="HS256",
                         headers={"kid": kid})
    status, body = await me_status(client, expired)
    assert status == 401 and body["code"] == "token_not_valid"
    # Inside the 30 s leeway the token still holds.
    fresh = jwt.encode(claims_of(user, config, iat=now - 3610, exp=now - 10), secret, algorithm="HS256",
                       headers={"kid": kid})
    assert (await me_status(client, fresh))[0] == 200


async def test_wrong_typ_or_string_sub_is_refused(client: TestClient, config: Config,
                                                  make_user: UserFactory) -> None:
    user = await make_user()
    kid, secret = config.jwt_keys[0]
    for change in ({"typ": "refresh"}, {"sub": str(user.id)}):
        token = jwt.encode(claims_of(user, config, **change), secret, algorithm="HS256", headers={"kid": kid})
        assert (await me_status(client, token))[0] == 401, change


async def test_revoked_jti_is_refused(client: TestClient, make_user: UserFactory) -> None:
    user = await make_user()
    assert (await me_status(client, user.token))[0] == 200
    await client.app[keys.REVOCATIONS].deny_access(user.jti)
    status, body = await me_status(client, user.token)
    assert status == 401 and body["code"] == "token_not_valid"


async def test_raw_sql_password_change_voids_tokens_on_both_surfaces(client: TestClient, config: Config,
                                                                      make_user: UserFactory) -> None:
    user = await make_user()
    login = await client.post("/auth/login", json={"identifier": user.login, "password": user.password})
    access = (await login.json())["access_token"]
    await set_password_hash(config, user.id, "brand-new-pass-2")
    assert await me_status(client, user.token) == (401, PASSWORD_CHANGED)
    resp = await client.get("/auth/me", headers={"Authorization": f"Bearer {access}"})
    assert resp.status == 401 and await resp.json() == PASSWORD_CHANGED
    # A fresh login with the new password works again.
    again = await client.post("/auth/login", json={"identifier": user.login, "password": "brand-new-pass-2"})
    assert again.status == 200


async def test_key_rotation(make_client: AppFactory, config: Config, make_user: UserFactory) -> None:
    user = await make_user()               # signed by k1 (the fixture's only key)
    old = config.jwt_keys[0]
    rotated = await make_client(jwt_keys=(("k2", "new-secret-" + uuid.uuid4().hex), old))
    assert (await me_status(rotated, user.token))[0] == 200
    login = await rotated.post("/api/auth/login/", json={"login": user.login, "password": user.password})
    new_token = (await login.json())["access"]
    assert jwt.get_unverified_header(new_token)["kid"] == "k2"
    assert (await me_status(rotated, new_token))[0] == 200
    # k1 dropped: its tokens die, k2's live on.
    dropped = await make_client(dataclasses.replace(config, jwt_keys=(rotated.app[keys.CONFIG].jwt_keys[0],)))
    assert (await me_status(dropped, user.token))[0] == 401
    assert (await me_status(dropped, new_token))[0] == 200


def test_fingerprint_is_keyed_by_the_token_kid() -> None:
    # The same hash under two keys gives two fingerprints: a leaked token says nothing of another key's.
    assert password_fingerprint("a", "hash") != password_fingerprint("b", "hash")


@pytest.mark.parametrize("change", [{"typ": "refresh"}, {"sub": "1"}, {"client": "desktop"}, {"jti": None},
                                    {"pwd_fp": None}, {"role": "admin"}])
async def test_claims_of_the_wrong_shape(client: TestClient, config: Config, make_user: UserFactory,
                                         change: dict) -> None:
    user = await make_user()
    claims = {k: v for k, v in claims_of(user, config, **change).items() if v is not None}
    kid, secret = config.jwt_keys[0]
    token = jwt.encode(claims, secret, algorithm="HS256", headers={"kid": kid})
    status, body = await me_status(client, token)
    assert (status, body["code"]) == (401, "token_not_valid")


async def test_password_changed_through_the_api(client: TestClient, make_user: UserFactory,
                                                admin: TestUser) -> None:
    user = await make_user()
    resp = await client.patch(f"/api/users/{user.id}/", json={"password": "brand-new-pass-2"},
                              headers=admin.headers)
    assert resp.status == 200, await resp.text()
    assert await me_status(client, user.token) == (401, PASSWORD_CHANGED)
    login = await client.post("/api/auth/login/", json={"login": user.login, "password": "brand-new-pass-2"})
    assert login.status == 200
    assert (await me_status(client, (await login.json())["access"]))[0] == 200


async def test_blocked_and_deleted_users_are_refused(client: TestClient, config: Config,
                                                     make_user: UserFactory) -> None:
    blocked, deleted = await make_user(), await make_user()
    assert config.database_url
    engine = make_engine(config.database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.begin() as conn:
            await conn.execute(update(users).where(users.c.id == blocked.id).values(client_status="blocked"))
            await conn.execute(update(users).where(users.c.id == deleted.id).values(deleted_at=users.c.created_at))
    finally:
        await engine.dispose()
    for user in (blocked, deleted):
        status, body = await me_status(client, user.token)
        assert (status, body["code"]) == (401, "user_inactive")
        resp = await client.get("/auth/me", headers=user.headers)
        assert resp.status == 401
        login = await client.post("/api/auth/login/", json={"login": user.login, "password": user.password})
        assert login.status == 401
