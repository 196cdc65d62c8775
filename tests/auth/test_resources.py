"""/api/roles/, /api/permissions/, /api/users/: the identity rules on the generic resource (SPEC §5.1)."""

from __future__ import annotations

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from backend import keys
from backend.auth.passwords import verify_password
from backend.auth.tables import users
from backend.db import read
from tests.conftest import TestUser, UserFactory

NEW_USER = {"name": "Иван", "surname": "Иванов", "last_name": "Иванович", "login": "driver1",
            "password": "12345678", "phone": "89001234567", "driver_license": "1234567890", "email": "i@example.com"}


async def hash_of(client: TestClient, user_id: int) -> str:
    async with read(client.app[keys.DB]) as conn:
        return (await conn.execute(select(users.c.password_hash).where(users.c.id == user_id))).scalar_one()


async def test_roles_crud(client: TestClient, admin: TestUser) -> None:
    created = await client.post("/api/roles/", json={"name": "Mechanic-2"}, headers=admin.headers)
    assert created.status == 201
    role = await created.json()
    assert set(role) == {"id", "name"}
    dup = await client.post("/api/roles", json={"name": "mechanic-2"}, headers=admin.headers)
    assert dup.status == 400
    assert await dup.json() == {"name": ["Роль с таким названием уже существует."]}
    listed = await (await client.get("/api/roles/", headers=admin.headers)).json()
    assert listed["count"] == 6 and listed["results"][-1] == role
    used = await client.delete("/api/roles/1/", headers=admin.headers)     # admin role has users
    assert used.status == 400 and "non_field_errors" in await used.json()
    assert (await client.delete(f"/api/roles/{role['id']}/", headers=admin.headers)).status == 204
    assert (await client.get(f"/api/roles/{role['id']}/", headers=admin.headers)).status == 404


async def test_permissions_one_per_role(client: TestClient, admin: TestUser) -> None:
    role = await (await client.post("/api/roles/", json={"name": "hotelier"}, headers=admin.headers)).json()
    created = await client.post("/api/permissions/", json={"role": role["id"], "can_book_cars": True},
                                headers=admin.headers)
    assert created.status == 201
    body = await created.json()
    assert body["role"] == role["id"] and body["can_book_cars"] is True and body["is_admin"] is False
    assert len(body) == 14          # id, role and the twelve flags of SPEC §2.1
    second = await client.post("/api/permissions/", json={"role": role["id"]}, headers=admin.headers)
    assert second.status == 400
    assert await second.json() == {"role": ["Права для этой роли уже существуют."]}
    missing = await client.post("/api/permissions/", json={"role": 9999}, headers=admin.headers)
    assert missing.status == 400 and list(await missing.json()) == ["role"]
    filtered = await (await client.get(f"/api/permissions/?role={role['id']}", headers=admin.headers)).json()
    assert filtered["count"] == 1


async def test_permission_change_applies_at_once(client: TestClient, admin: TestUser,
                                                 make_user: UserFactory) -> None:
    driver = await make_user(role="driver")
    assert (await client.get("/api/roles/", headers=driver.headers)).status == 403
    perms = await (await client.get(f"/api/permissions/?role={driver.role_id}", headers=admin.headers)).json()
    perm_id = perms["results"][0]["id"]
    patched = await client.patch(f"/api/permissions/{perm_id}/", json={"can_manage_users": True},
                                 headers=admin.headers)
    assert patched.status == 200
    assert (await client.get("/api/roles/", headers=driver.headers)).status == 200


async def test_admin_creates_an_approved_user_with_a_hashed_password(client: TestClient, admin: TestUser) -> None:
    resp = await client.post("/api/users/", json={**NEW_USER, "role": 4}, headers=admin.headers)
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body == {"id": body["id"], "login": "driver1", "name": "Иван", "surname": "Иванов",
                    "last_name": "Иванович", "phone": "+79001234567", "driver_license": "1234567890",
                    "role": 4, "deleted_at": None, "email": "i@example.com", "client_status": "approved"}
    stored = await hash_of(client, body["id"])
    assert stored.startswith("$argon2id$")
    assert await verify_password(client.app[keys.CONFIG], stored, "12345678")
    signin = await client.post("/sign-in", json={"login": "driver1", "password": "12345678"})
    assert signin.status == 200


async def test_user_create_errors(client: TestClient, admin: TestUser, make_user: UserFactory) -> None:
    no_password = {k: v for k, v in NEW_USER.items() if k != "password"}
    resp = await client.post("/api/users/", json={**no_password, "role": 4}, headers=admin.headers)
    assert resp.status == 400 and await resp.json() == {"password": ["Обязательное поле."]}
    short = await client.post("/api/users/", json={**NEW_USER, "password": "1234", "role": 4}, headers=admin.headers)
    assert short.status == 400 and list(await short.json()) == ["password"]
    role = await client.post("/api/users/", json={**NEW_USER, "role": 999}, headers=admin.headers)
    assert role.status == 400 and list(await role.json()) == ["role"]
    await make_user(role="driver", login="driver1")
    dup = await client.post("/api/users/", json={**NEW_USER, "login": "DRIVER1", "role": 4}, headers=admin.headers)
    assert dup.status == 400
    assert await dup.json() == {"login": ["Пользователь с таким логином уже существует."]}
    phone = await client.post("/api/users/", json={**NEW_USER, "login": "x", "phone": "555", "role": 4},
                              headers=admin.headers)
    assert phone.status == 400 and list(await phone.json()) == ["phone"]


async def test_self_service(client: TestClient, make_user: UserFactory) -> None:
    me = await make_user(role="driver", phone="+79001112233")
    other = await make_user(role="driver", phone="+79004445566", email="o@example.com")
    mine = await client.get(f"/api/users/{me.id}/", headers=me.headers)
    assert mine.status == 200 and (await mine.json())["phone"] == "+79001112233"
    assert (await client.get(f"/api/users/{other.id}/", headers=me.headers)).status == 404
    renamed = await client.patch(f"/api/users/{me.id}", json={"name": "Новое"}, headers=me.headers)
    assert renamed.status == 200 and (await renamed.json())["name"] == "Новое"
    same_role = await client.patch(f"/api/users/{me.id}/", json={"role": me.role_id}, headers=me.headers)
    assert same_role.status == 200
    promote = await client.patch(f"/api/users/{me.id}/", json={"role": 1}, headers=me.headers)
    assert promote.status == 403
    assert await promote.json() == {"detail": "У вас недостаточно прав для выполнения данного действия.",
                                    "code": "permission_denied"}
    assert (await client.patch(f"/api/users/{other.id}/", json={"name": "x"}, headers=me.headers)).status == 404
    assert (await client.delete(f"/api/users/{me.id}/", headers=me.headers)).status == 403
    assert (await client.post("/api/users/", json={**NEW_USER, "role": 4}, headers=me.headers)).status == 403


async def test_operators_see_private_fields(client: TestClient, make_user: UserFactory) -> None:
    operator = await make_user(role="operator")
    other = await make_user(role="client", phone="+79004445566")
    body = await (await client.get(f"/api/users/{other.id}/", headers=operator.headers)).json()
    assert body["phone"] == "+79004445566"


async def test_password_change_through_the_api(client: TestClient, admin: TestUser, make_user: UserFactory) -> None:
    user = await make_user(role="driver")
    before = await hash_of(client, user.id)
    resp = await client.patch(f"/api/users/{user.id}/", json={"password": "brand-new-pass"}, headers=admin.headers)
    assert resp.status == 200
    after = await hash_of(client, user.id)
    assert after != before and after.startswith("$argon2id$")
    # PUT without a password keeps the hash.
    put = await client.put(f"/api/users/{user.id}/", json={"login": user.login, "role": user.role_id},
                           headers=admin.headers)
    assert put.status == 200 and await hash_of(client, user.id) == after
    assert (await client.get("/api/auth/me/", headers=user.headers)).status == 401     # old token dies


# The embedded PostgreSQL runs with --locale=C, where lower()/ILIKE fold ASCII only; Cyrillic
# terms are matched case-sensitively there.
async def test_list_filters(client: TestClient, admin: TestUser, make_user: UserFactory) -> None:
    await make_user(role="driver", login="alpha", name="Анна")
    await make_user(role="client", login="beta", email="zeta@example.com")
    clients = await (await client.get("/api/users/?role=5", headers=admin.headers)).json()
    assert [u["login"] for u in clients["results"]] == ["beta"]
    by_login = await (await client.get("/api/users/?login=ALPHA", headers=admin.headers)).json()
    assert [u["login"] for u in by_login["results"]] == ["alpha"]
    for term, expected in (("Анн", ["alpha"]), ("ZETA", ["beta"]), ("a", ["admin1", "alpha", "beta"]),
                           ("%", []), ("_", [])):
        found = await (await client.get("/api/users/", params={"search": term}, headers=admin.headers)).json()
        assert [u["login"] for u in found["results"]] == expected, term
    bad = await client.get("/api/users/?role=x", headers=admin.headers)
    assert bad.status == 400 and list(await bad.json()) == ["role"]


async def test_block_and_delete_revoke_everything(client: TestClient, admin: TestUser,
                                                  make_user: UserFactory) -> None:
    for action in ("block", "delete"):
        user = await make_user(role="client")
        signin = await client.post("/sign-in", json={"login": user.login, "password": user.password})
        assert signin.status == 200
        if action == "block":
            resp = await client.patch(f"/api/users/{user.id}/", json={"client_status": "blocked"},
                                      headers=admin.headers)
            assert resp.status == 200
        else:
            resp = await client.delete(f"/api/users/{user.id}/", headers=admin.headers)
            assert resp.status == 204
            assert (await client.get(f"/api/users/{user.id}/", headers=admin.headers)).status == 404
        assert await client.app[keys.REDIS].get(client.app[keys.REVOCATIONS].revoked_before_key(user.id)) is not None
        assert (await client.get("/profile")).status == 401
        assert (await client.get("/api/auth/me/", headers=user.headers)).status == 401
