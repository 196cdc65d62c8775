"""Refresh tokens (SPEC §3.3): opaque, hashed at rest, rotated, reuse detection, races, death causes."""

from __future__ import annotations

import asyncio
import hashlib
from typing import TYPE_CHECKING

from aiohttp.test_utils import TestClient
from sqlalchemy import select, update

from backend import keys
from backend.auth.tables import refresh_tokens, users
from backend.db import read, transaction
from tests.auth.test_tokens import set_password_hash
from tests.conftest import UserFactory

if TYPE_CHECKING:
    from tests.conftest import TestUser

REFUSED = {"detail": "Refresh-токен недействителен или отозван.", "code": "refresh_token_not_valid"}


async def login(client: TestClient, user: TestUser) -> dict:
    resp = await client.post("/auth/login", json={"identifier": user.login, "password": user.password})
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def refresh(client: TestClient, token: str) -> tuple[int, dict]:
    resp = await client.post("/auth/refresh", json={"refresh_token": token})
    return resp.status, await resp.json()


async def me(client: TestClient, access: str) -> int:
    return (await client.get("/auth/me", headers={"Authorization": f"Bearer {access}"})).status


async def family_rows(client: TestClient, user_id: int) -> list:
    async with read(client.app[keys.DB]) as conn:
        return list(await conn.execute(select(refresh_tokens).where(refresh_tokens.c.user_id == user_id)
                                       .order_by(refresh_tokens.c.id)))


async def test_refresh_tokens_are_opaque_and_stored_hashed(client: TestClient, make_user: UserFactory) -> None:
    user = await make_user()
    token = (await login(client, user))["refresh_token"]
    assert len(token) >= 43 and "." not in token          # 32 random bytes, not a JWT
    rows = await family_rows(client, user.id)
    assert len(rows) == 1
    assert rows[0].token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in {str(value) for value in rows[0]}


async def test_rotation_returns_a_new_pair_and_retires_the_old(client: TestClient, make_user: UserFactory) -> None:
    user = await make_user()
    first = await login(client, user)
    status, body = await refresh(client, first["refresh_token"])
    assert status == 200
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert body["refresh_token"] != first["refresh_token"]
    assert await me(client, body["access_token"]) == 200
    status, _ = await refresh(client, body["refresh_token"])
    assert status == 200
    rows = await family_rows(client, user.id)
    assert len({row.family_id for row in rows}) == 1 and len(rows) == 3
    assert [row.rotated_at is not None for row in rows] == [True, True, False]


async def test_reuse_of_a_rotated_token_revokes_the_family(client: TestClient, make_user: UserFactory) -> None:
    user = await make_user()
    first = await login(client, user)
    _, second = await refresh(client, first["refresh_token"])
    # The thief replays the first token: 401, and the legitimate holder's token dies too.
    assert await refresh(client, first["refresh_token"]) == (401, REFUSED)
    assert await refresh(client, second["refresh_token"]) == (401, REFUSED)
    assert await me(client, second["access_token"]) == 401
    rows = await family_rows(client, user.id)
    assert rows and all(row.revoked_at is not None for row in rows)
    # Another family (another device) is not touched.
    other = await login(client, user)
    assert (await refresh(client, other["refresh_token"]))[0] == 200


async def test_concurrent_refresh_on_two_instances(two_apps: tuple[TestClient, TestClient],
                                                   make_user: UserFactory) -> None:
    a, b = two_apps
    user = await make_user()
    token = (await login(a, user))["refresh_token"]
    results = await asyncio.gather(refresh(a, token), refresh(b, token))
    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 401]
    winner = next(body for status, body in results if status == 200)
    # The race counts as reuse: the winner's new pair is revoked with the family.
    assert (await refresh(a, winner["refresh_token"]))[0] == 401
    assert await me(b, winner["access_token"]) == 401
    rows = await family_rows(a, user.id)
    assert rows and all(row.revoked_at is not None for row in rows)


async def test_unknown_and_malformed_tokens(client: TestClient) -> None:
    assert await refresh(client, "no-such-token") == (401, REFUSED)
    resp = await client.post("/auth/refresh", json={})
    assert resp.status == 422
    body = await resp.json()
    assert body["errors"] == [{"field": "refresh_token", "message": "Обязательное поле."}]


async def test_expired_refresh_token(client: TestClient, make_user: UserFactory) -> None:
    user = await make_user()
    token = (await login(client, user))["refresh_token"]
    async with transaction(client.app[keys.DB]) as conn:
        await conn.execute(update(refresh_tokens).where(refresh_tokens.c.user_id == user.id)
                           .values(expires_at=refresh_tokens.c.created_at))
    assert await refresh(client, token) == (401, REFUSED)


async def test_password_change_by_raw_sql_kills_refresh(client: TestClient, make_user: UserFactory) -> None:
    user = await make_user()
    token = (await login(client, user))["refresh_token"]
    await set_password_hash(client.app[keys.CONFIG], user.id, "brand-new-pass-2")
    status, body = await refresh(client, token)
    assert status == 401 and body["code"] == "password_changed"
    rows = await family_rows(client, user.id)
    assert rows and all(row.revoked_at is not None for row in rows)


async def test_blocked_and_deleted_users_cannot_refresh(client: TestClient, make_user: UserFactory) -> None:
    for change in ({"client_status": "blocked"}, {"deleted_at": users.c.created_at}):
        user = await make_user()
        pair = await login(client, user)
        async with transaction(client.app[keys.DB]) as conn:
            await conn.execute(update(users).where(users.c.id == user.id).values(**change))
        assert await refresh(client, pair["refresh_token"]) == (401, REFUSED), change
        assert await me(client, pair["access_token"]) == 401
        assert (await client.get("/api/auth/me/", headers=user.headers)).status == 401
