"""/api/callup/apps/ (SPEC §6.1): DRF-style CRUD for can_manage_apps, token rotation, block, unblock."""

from __future__ import annotations

import uuid

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import insert

from backend import keys
from backend.auth.tables import permissions, roles
from backend.db import transaction
from tests.callup.conftest import TestApp, create_order
from tests.conftest import TestUser, UserFactory

BASE = "/api/callup/apps/"


@pytest.fixture
async def manager(client: TestClient, make_user: UserFactory) -> TestUser:
    """A user whose only right is can_manage_apps (no seeded role but admin has it)."""
    async with transaction(client.app[keys.DB]) as conn:
        role_id = (await conn.execute(insert(roles).values(name="app-manager").returning(roles.c.id))).scalar_one()
        await conn.execute(insert(permissions).values(role_id=role_id, can_manage_apps=True))
    return await make_user(role="app-manager")


async def create(client: TestClient, user: TestUser, **body: object) -> dict:
    resp = await client.post(BASE, json={"name": "Shop", **body}, headers=user.headers)
    data = await resp.json()
    assert resp.status == 201, data
    return data


def as_app(row: dict) -> TestApp:
    return TestApp(id=row["id"], token=row["token"])


async def test_crud(client: TestClient, manager: TestUser, make_user: UserFactory) -> None:
    owner = await make_user(role="driver")
    row = await create(client, manager, token=str(uuid.uuid4()))         # a sent token is read-only
    assert set(row) == {"id", "name", "token", "owner", "blocked_at", "created_at"}
    assert row["owner"] == manager.id and row["blocked_at"] is None
    assert uuid.UUID(row["token"]).version == 4
    me = await client.get("/v1/apps/me", headers=as_app(row).headers)
    assert (await me.json())["data"] == {"id": row["id"], "name": "Shop"}
    listed = await (await client.get(BASE + "?name=sho", headers=manager.headers)).json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == row["id"]
    one = await client.get(f"{BASE}{row['id']}/", headers=manager.headers)
    assert await one.json() == row
    patched = await client.patch(f"{BASE}{row['id']}/", json={"name": "Shop 2", "owner": owner.id, "token": "x"},
                                 headers=manager.headers)
    body = await patched.json()
    assert (body["name"], body["owner"], body["token"]) == ("Shop 2", owner.id, row["token"])
    put = await client.put(f"{BASE}{row['id']}", json={"name": "Shop 3"}, headers=manager.headers)
    assert (await put.json())["name"] == "Shop 3"
    assert (await client.delete(f"{BASE}{row['id']}/", headers=manager.headers)).status == 204
    assert (await client.get(f"{BASE}{row['id']}/", headers=manager.headers)).status == 404
    assert (await client.get("/v1/apps/me", headers=as_app(row).headers)).status == 403   # soft-deleted


async def test_bad_bodies(client: TestClient, manager: TestUser) -> None:
    for body in ({}, {"name": ""}, {"name": "   "}, {"name": "x", "owner": 10**6}, {"name": "x", "owner": "me"}):
        resp = await client.post(BASE, json=body, headers=manager.headers)
        assert resp.status == 400, body
    assert (await client.get(f"{BASE}99999999999999999999/", headers=manager.headers)).status == 404
    assert (await client.get(f"{BASE}abc/", headers=manager.headers)).status == 404


async def test_rights(client: TestClient, make_user: UserFactory, admin: TestUser, app_a: TestApp) -> None:
    row = await create(client, admin)
    for role in ("operator", "driver", "client", "mechanic"):
        user = await make_user(role=role)
        for method, path in (("GET", BASE), ("POST", BASE), ("GET", f"{BASE}{row['id']}/"),
                             ("PATCH", f"{BASE}{row['id']}/"), ("DELETE", f"{BASE}{row['id']}/"),
                             ("POST", f"{BASE}{row['id']}/rotate-token/"), ("POST", f"{BASE}{row['id']}/block/"),
                             ("POST", f"{BASE}{row['id']}/unblock/")):
            resp = await client.request(method, path, json={"name": "x"}, headers=user.headers)
            assert resp.status == 403, (role, method, path)
    assert (await client.get(BASE)).status == 401
    assert (await client.get(BASE, headers=app_a.headers)).status == 401     # an app manages no apps


async def test_rotate_token_retires_the_old_one_at_once(two_apps, manager: TestUser) -> None:
    a, b = two_apps
    row = await create(a, manager)
    await create_order(b, as_app(row))
    resp = await a.post(f"{BASE}{row['id']}/rotate-token/", headers=manager.headers)
    rotated = await resp.json()
    assert resp.status == 200 and rotated["token"] != row["token"] and rotated["id"] == row["id"]
    old = await b.post("/v1/orders", json={"phone": "79001234567"}, headers=as_app(row).headers)
    assert old.status == 403                                         # on the other instance too
    await create_order(b, as_app(rotated), "79007654321")


async def test_block_and_unblock(two_apps, manager: TestUser) -> None:
    a, b = two_apps
    row = await create(a, manager)
    order = await create_order(b, as_app(row))
    blocked = await (await a.post(f"{BASE}{row['id']}/block", headers=manager.headers)).json()
    assert blocked["blocked_at"] is not None and blocked["token"] == row["token"]
    again = await (await a.post(f"{BASE}{row['id']}/block/", headers=manager.headers)).json()
    assert again["blocked_at"] == blocked["blocked_at"]              # blocking twice keeps the first time
    for method, path in (("POST", "/v1/orders"), ("GET", f"/v1/orders/{order['id']}"), ("GET", "/v1/apps/me")):
        resp = await b.request(method, path, json={"phone": "79001234567"}, headers=as_app(row).headers)
        assert resp.status == 403
        assert (await resp.json())["errors"] == [{"message": "access denied", "code": "access_denied"}]
    unblocked = await (await a.post(f"{BASE}{row['id']}/unblock/", headers=manager.headers)).json()
    assert unblocked["blocked_at"] is None
    assert (await b.get(f"/v1/orders/{order['id']}", headers=as_app(row).headers)).status == 200


async def test_actions_on_missing_or_deleted_apps_are_404(client: TestClient, manager: TestUser) -> None:
    row = await create(client, manager)
    assert (await client.delete(f"{BASE}{row['id']}/", headers=manager.headers)).status == 204
    for action in ("rotate-token", "block", "unblock"):
        for app_id in (row["id"], 424242):
            resp = await client.post(f"{BASE}{app_id}/{action}/", headers=manager.headers)
            assert resp.status == 404
            assert (await resp.json())["code"] == "not_found"
