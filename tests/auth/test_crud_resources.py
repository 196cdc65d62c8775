"""The generic CRUD Resource (backend/api/crud.py) through /api/roles/, /api/permissions/, /api/users/.

Pagination, limits, filters, include_deleted, soft delete, PUT/PATCH, optional trailing slash,
id parsing and integrity errors are written once in crud.py; these tests pin them for every
collection built on it (SPEC §2.4, §5.1, §11.9).
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from backend.api.crud import Resource
from backend.auth.resources import PermissionIn, PermissionOut
from backend.auth.tables import permissions, users
from backend.config import Config
from backend.db import make_engine
from backend.principal import PERMISSION_FLAGS
from tests.conftest import TestUser, UserFactory

NOT_FOUND = {"detail": "Не найдено.", "code": "not_found"}


class Api:
    """One user's calls: (status, JSON body or None)."""

    def __init__(self, client: TestClient, user: TestUser) -> None:
        self.client, self.user = client, user

    async def __call__(self, method: str, path: str, body: Any = None, **params: Any) -> tuple[int, Any]:
        resp = await self.client.request(method, path, json=body, params=params or None, headers=self.user.headers)
        return resp.status, (await resp.json() if resp.status != 204 else None)


@pytest.fixture
async def admin_api(client: TestClient, admin: TestUser) -> Api:
    return Api(client, admin)


async def make_roles(api: Api, count: int) -> list[int]:
    ids = []
    for number in range(count):
        status, body = await api("POST", "/api/roles/", {"name": f"role-{number}"})
        assert status == 201, body
        ids.append(body["id"])
    return ids


# ---- list: pagination, limits, ordering --------------------------------------------------------

async def test_pagination_count_next_previous(admin_api: Api) -> None:
    await make_roles(admin_api, 4)                     # 5 seeded + 4 = 9 roles
    status, page = await admin_api("GET", "/api/roles/", limit=4, offset=4)
    assert status == 200
    assert page["count"] == 9
    assert [role["id"] for role in page["results"]] == sorted(role["id"] for role in page["results"])
    assert len(page["results"]) == 4
    assert page["next"] == "/api/roles/?limit=4&offset=8"       # relative: no scheme, no host
    assert page["previous"] == "/api/roles/?limit=4&offset=0"
    status, last = await admin_api("GET", "/api/roles/", limit=4, offset=8)
    assert len(last["results"]) == 1 and last["next"] is None
    status, first = await admin_api("GET", "/api/roles/")
    assert first["previous"] is None and first["next"] is None and len(first["results"]) == 9
    assert first["results"][0] == {"id": first["results"][0]["id"], "name": "admin"}
    status, beyond = await admin_api("GET", "/api/roles/", offset=100)
    assert status == 200 and beyond["results"] == [] and beyond["count"] == 9


async def test_page_links_ignore_the_host_header(client: TestClient, admin: TestUser) -> None:
    """Regression: links were built from the Host header, so a forged one was handed to clients."""
    await make_roles(Api(client, admin), 2)
    resp = await client.get("/api/roles/", params={"limit": 2, "offset": 2},
                            headers={**admin.headers, "Host": "evil.example"})
    page = await resp.json()
    assert resp.status == 200 and page["count"] > 4
    assert (page["next"], page["previous"]) == ("/api/roles/?limit=2&offset=4", "/api/roles/?limit=2&offset=0")


@pytest.mark.parametrize("params", [{"limit": 501}, {"limit": 0}, {"limit": "ten"}, {"offset": -1},
                                    {"offset": "x"}, {"include_deleted": "maybe"}])
async def test_bad_list_parameters_are_400(admin_api: Api, params: dict[str, Any]) -> None:
    status, body = await admin_api("GET", "/api/roles/", **params)
    assert status == 400
    assert set(body) == set(params)


async def test_limit_500_is_allowed(admin_api: Api) -> None:
    status, body = await admin_api("GET", "/api/roles/", limit=500)
    assert status == 200 and body["count"] == 5


async def test_huge_numbers_are_client_errors(admin_api: Api) -> None:
    huge = "9" * 25
    assert (await admin_api("GET", f"/api/roles/{huge}/"))[0] == 404
    assert (await admin_api("PATCH", f"/api/roles/{huge}/", {"name": "x"}))[0] == 404
    assert (await admin_api("DELETE", f"/api/roles/{huge}/"))[0] == 404
    assert (await admin_api("GET", "/api/permissions/", role=huge))[0] == 400
    assert (await admin_api("GET", "/api/roles/", offset=huge))[0] == 400


# ---- retrieve, routing ---------------------------------------------------------------------------

async def test_trailing_slash_is_optional(admin_api: Api) -> None:
    status, created = await admin_api("POST", "/api/roles", {"name": "no-slash"})
    assert status == 201
    assert (await admin_api("GET", "/api/roles"))[0] == 200
    assert (await admin_api("GET", f"/api/roles/{created['id']}"))[1] == created
    assert (await admin_api("PATCH", f"/api/roles/{created['id']}", {"name": "still-no-slash"}))[0] == 200
    assert (await admin_api("DELETE", f"/api/roles/{created['id']}"))[0] == 204


async def test_non_numeric_and_unknown_ids_are_404(admin_api: Api) -> None:
    for path in ("/api/roles/abc/", "/api/roles/1.5/", "/api/roles/-1/", "/api/roles/999999/"):
        assert await admin_api("GET", path) == (404, NOT_FOUND), path


async def test_wrong_method_is_405(admin_api: Api) -> None:
    status, body = await admin_api("POST", "/api/roles/1/", {"name": "x"})
    assert status == 405
    assert body["code"] == "method_not_allowed"


# ---- create / update / delete --------------------------------------------------------------------

async def test_put_replaces_and_patch_changes_only_what_is_sent(admin_api: Api) -> None:
    [role] = await make_roles(admin_api, 1)
    status, perm = await admin_api("POST", "/api/permissions/", {"role": role, "can_manage_fleet": True,
                                                                  "can_book_cars": True})
    assert status == 201
    assert perm["can_manage_fleet"] and perm["can_book_cars"] and not perm["is_admin"]
    status, patched = await admin_api("PATCH", f"/api/permissions/{perm['id']}/", {"can_view_dashboard": True})
    assert status == 200
    assert patched == {**perm, "can_view_dashboard": True}
    status, replaced = await admin_api("PUT", f"/api/permissions/{perm['id']}/", {"role": role,
                                                                                   "can_manage_apps": True})
    assert status == 200
    # PUT is a full replace: flags not sent fall back to their defaults.
    assert replaced == {"id": perm["id"], "role": role, **dict.fromkeys(PERMISSION_FLAGS, False),
                        "can_manage_apps": True}
    status, body = await admin_api("PUT", f"/api/roles/{role}/", {})
    assert status == 400 and body == {"name": ["Обязательное поле."]}


async def test_patch_null_for_a_required_field_is_a_field_error(admin_api: Api) -> None:
    [role] = await make_roles(admin_api, 1)
    status, body = await admin_api("PATCH", f"/api/roles/{role}/", {"name": None})
    assert status == 400
    assert body == {"name": ["Это поле не может быть null."]}


async def test_bodies_that_are_not_objects(admin_api: Api, client: TestClient, admin: TestUser) -> None:
    status, body = await admin_api("POST", "/api/roles/", ["name"])
    assert status == 400 and "non_field_errors" in body
    resp = await client.post("/api/roles/", data=b"{broken", headers={**admin.headers,
                                                                         "Content-Type": "application/json"})
    assert resp.status == 400
    resp = await client.post("/api/roles/", data=b"name=x", headers={**admin.headers,
                                                                        "Content-Type": "text/plain"})
    assert resp.status == 415


async def test_soft_delete_then_404_and_include_deleted_for_admins(client: TestClient, admin_api: Api,
                                                                   make_user: UserFactory) -> None:
    role, other = await make_roles(admin_api, 2)
    assert await admin_api("DELETE", f"/api/roles/{role}/") == (204, None)
    assert await admin_api("GET", f"/api/roles/{role}/") == (404, NOT_FOUND)
    assert (await admin_api("PATCH", f"/api/roles/{role}/", {"name": "back"}))[0] == 404
    assert (await admin_api("PUT", f"/api/roles/{role}/", {"name": "back"}))[0] == 404
    assert (await admin_api("DELETE", f"/api/roles/{role}/"))[0] == 404
    listed = (await admin_api("GET", "/api/roles/"))[1]
    assert role not in [r["id"] for r in listed["results"]] and listed["count"] == 6
    status, everything = await admin_api("GET", "/api/roles/", include_deleted="true")
    assert status == 200 and everything["count"] == 7
    assert (await admin_api("GET", f"/api/roles/{role}/", include_deleted="true"))[0] == 200
    # A user manager who is not an admin may not look at deleted rows (SPEC §11.9).
    status, _ = await admin_api("POST", "/api/permissions/", {"role": other, "can_manage_users": True})
    assert status == 201
    manager = Api(client, await make_user(role="role-1"))
    assert (await manager("GET", "/api/roles/"))[0] == 200
    assert (await manager("GET", "/api/roles/", include_deleted="true"))[0] == 403
    assert (await manager("GET", "/api/roles/", include_deleted="false"))[0] == 200


async def test_unique_violations_are_field_errors(admin_api: Api) -> None:
    status, body = await admin_api("POST", "/api/roles/", {"name": "ADMIN"})     # names compare case-insensitively
    assert status == 400
    assert body == {"name": ["Роль с таким названием уже существует."]}
    [role] = await make_roles(admin_api, 1)
    assert (await admin_api("POST", "/api/permissions/", {"role": role}))[0] == 201
    status, body = await admin_api("POST", "/api/permissions/", {"role": role, "is_admin": True})
    assert status == 400
    assert body == {"role": ["Права для этой роли уже существуют."]}
    status, body = await admin_api("PATCH", f"/api/roles/{role}/", {"name": "driver"})
    assert status == 400 and list(body) == ["name"]


async def test_missing_references_are_field_errors(admin_api: Api) -> None:
    status, body = await admin_api("POST", "/api/permissions/", {"role": 999999})
    assert status == 400 and list(body) == ["role"]
    status, body = await admin_api("POST", "/api/users/", {"login": "x1", "password": "long-enough-1",
                                                           "role": 999999})
    assert status == 400 and list(body) == ["role"]


async def test_filters(admin_api: Api, make_user: UserFactory) -> None:
    role_ids = {r["name"]: r["id"] for r in (await admin_api("GET", "/api/roles/"))[1]["results"]}
    status, page = await admin_api("GET", "/api/permissions/", role=role_ids["driver"])
    assert status == 200 and page["count"] == 1 and page["results"][0]["role"] == role_ids["driver"]
    assert (await admin_api("GET", "/api/permissions/", role="driver"))[0] == 400
    await make_user(role="driver", login="Petrov", name="Пётр", email="petr@example.com")
    await make_user(role="mechanic", login="sidorov", surname="Petrovsky")
    await make_user(role="mechanic", login="ivanov", name="Пётр")
    status, page = await admin_api("GET", "/api/users/", role=role_ids["driver"])
    assert [u["login"] for u in page["results"]] == ["Petrov"]
    status, page = await admin_api("GET", "/api/users/", login="petrov")
    assert [u["login"] for u in page["results"]] == ["Petrov"]
    status, page = await admin_api("GET", "/api/users/", search="PETR")
    assert sorted(u["login"] for u in page["results"]) == ["Petrov", "sidorov"]
    status, page = await admin_api("GET", "/api/users/", search="%")
    assert page["count"] == 0                    # LIKE wildcards are escaped


async def test_a_generic_resource_maps_database_errors(make_client: Any, make_user: UserFactory) -> None:
    """A Resource without domain hooks: the database's own unique and FK errors become field errors."""
    plain = Resource(path="/api/test-permissions/", table=permissions, schema_in=PermissionIn,
                     schema_out=PermissionOut, tag="test", read="is_admin", write="is_admin",
                     columns={"role": "role_id"})
    client = await make_client(setup=plain.register)
    admin = Api(client, await make_user(role="admin"))
    status, body = await admin("POST", "/api/test-permissions/", {"role": 999999})
    assert status == 400 and list(body) == ["role"]
    status, body = await admin("POST", "/api/test-permissions/", {"role": 1})     # admin's row exists
    assert status == 400 and body == {"role": ["Объект с таким значением поля уже существует."]}
    driver = Api(client, await make_user(role="driver"))
    assert (await driver("GET", "/api/test-permissions/"))[0] == 403
    anonymous = await client.get("/api/test-permissions/")
    assert anonymous.status == 401


# ---- users ---------------------------------------------------------------------------------------

async def test_user_create_hashes_and_never_returns_the_password(admin_api: Api, config: Config) -> None:
    role_ids = {r["name"]: r["id"] for r in (await admin_api("GET", "/api/roles/"))[1]["results"]}
    status, user = await admin_api("POST", "/api/users/", {
        "name": "Иван", "surname": "Иванов", "last_name": "Иванович", "login": "driver1",
        "password": "12345678", "phone": "89001234567", "driver_license": "1234567890",
        "role": role_ids["driver"]})
    assert status == 201, user
    assert user["phone"] == "+79001234567" and user["client_status"] == "approved"
    assert "password" not in user and "password_hash" not in user
    assert config.database_url
    engine = make_engine(config.database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            stored = (await conn.execute(select(users.c.password_hash).where(users.c.id == user["id"]))).scalar_one()
    finally:
        await engine.dispose()
    assert stored.startswith("$argon2id$") and "12345678" not in stored
    status, body = await admin_api("POST", "/api/users/", {"login": "short", "password": "1234", "role": 1})
    assert status == 400 and list(body) == ["password"]
    status, body = await admin_api("POST", "/api/users/", {"login": "DRIVER1", "password": "12345678", "role": 1})
    assert status == 400 and list(body) == ["login"]
    status, body = await admin_api("POST", "/api/users/", {"login": "nopass", "role": 1})
    assert status == 400 and list(body) == ["password"]
    login = await admin_api.client.post("/api/auth/login/", json={"login": "driver1", "password": "12345678"})
    assert login.status == 200


async def test_users_see_themselves_and_not_the_private_fields_of_others(client: TestClient,
                                                                        make_user: UserFactory) -> None:
    me_user = await make_user(role="driver", phone="+79000000001", email="me@example.com", driver_license="11")
    other = await make_user(role="driver", phone="+79000000002", email="o@example.com", driver_license="22")
    me = Api(client, me_user)
    status, mine = await me("GET", f"/api/users/{me_user.id}/")
    assert status == 200 and (mine["phone"], mine["email"], mine["driver_license"]) == ("+79000000001",
                                                                                         "me@example.com", "11")
    # A plain user is not in the directory business: others do not exist for them (SPEC §5.1).
    assert (await me("GET", f"/api/users/{other.id}/"))[0] == 404
    status, page = await me("GET", "/api/users/")
    assert status == 200 and [u["id"] for u in page["results"]] == [me_user.id] and page["count"] == 1
    # Fleet staff pick drivers for waybills: they see everyone, without the private fields.
    mechanic = Api(client, await make_user(role="mechanic"))
    status, theirs = await mechanic("GET", f"/api/users/{other.id}/")
    assert status == 200 and (theirs["phone"], theirs["email"], theirs["driver_license"]) == (None, None, None)
    status, page = await mechanic("GET", "/api/users/")
    others = [u for u in page["results"] if u["id"] != mechanic.user.id]
    assert len(others) == 2 and all(u["phone"] is None for u in others)
    operator = Api(client, await make_user(role="operator"))      # can_manage_clients sees them
    assert (await operator("GET", f"/api/users/{other.id}/"))[1]["phone"] == "+79000000002"


async def test_self_patch_but_not_the_role(client: TestClient, make_user: UserFactory) -> None:
    user = await make_user(role="driver")
    other = await make_user(role="driver")
    me = Api(client, user)
    status, body = await me("PATCH", f"/api/users/{user.id}/", {"name": "Новое"})
    assert status == 200 and body["name"] == "Новое"
    assert (await me("PATCH", f"/api/users/{user.id}/", {"role": 1}))[0] == 403
    assert (await me("PATCH", f"/api/users/{user.id}/", {"role": user.role_id}))[0] == 200
    assert (await me("PATCH", f"/api/users/{other.id}/", {"name": "x"}))[0] == 404
    assert (await me("DELETE", f"/api/users/{other.id}/"))[0] == 404
    assert (await me("POST", "/api/users/", {"login": "new", "password": "long-enough-1", "role": 1}))[0] == 403


async def test_deleting_a_user_ends_their_tokens(admin_api: Api, make_user: UserFactory) -> None:
    user = await make_user(role="driver")
    assert (await admin_api.client.get("/api/auth/me/", headers=user.headers)).status == 200
    assert (await admin_api("DELETE", f"/api/users/{user.id}/"))[0] == 204
    assert (await admin_api.client.get("/api/auth/me/", headers=user.headers)).status == 401
    assert (await admin_api("GET", f"/api/users/{user.id}/"))[0] == 404
    status, found = await admin_api("GET", f"/api/users/{user.id}/", include_deleted="true")
    assert status == 200 and found["deleted_at"] is not None


async def test_names_of_deleted_rows_can_be_used_again(admin_api: Api) -> None:
    status, role = await admin_api("POST", "/api/roles/", {"name": "tourist"})
    assert status == 201
    assert (await admin_api("POST", "/api/roles/", {"name": "Tourist"}))[0] == 400     # live duplicate
    assert (await admin_api("DELETE", f"/api/roles/{role['id']}/"))[0] == 204
    status, again = await admin_api("POST", "/api/roles/", {"name": "tourist"})
    assert status == 201 and again["id"] != role["id"]

    body = {"login": "reused", "password": "long-enough-1", "role": again["id"], "email": "r@example.com"}
    status, user = await admin_api("POST", "/api/users/", body)
    assert status == 201
    status, dup = await admin_api("POST", "/api/users/", {**body, "login": "REUSED", "email": None})
    assert status == 400 and list(dup) == ["login"]
    assert (await admin_api("DELETE", f"/api/users/{user['id']}/"))[0] == 204
    status, second = await admin_api("POST", "/api/users/", body)
    assert status == 201 and second["id"] != user["id"]
    # The new account signs in; the deleted one with the same login does not get in its way.
    login = await admin_api.client.post("/api/auth/login/", json={"login": "reused", "password": "long-enough-1"})
    assert login.status == 200 and (await login.json())["user"]["id"] == second["id"]
