"""POST /v1/orders in the seed's three schemes, GET /v1/orders/{id}, GET /v1/apps/me, app-token refusals."""

from __future__ import annotations

import dataclasses
import re
import uuid

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import update

from backend import keys
from backend.app import create_app
from backend.callup.tables import apps
from backend.config import Rate
from backend.db import transaction
from tests.callup.conftest import AppFactory, TestApp, create_order, error_of, order_code, order_row, statuses

MANY = Rate(1000, 600)


async def test_scheme_1_answers_the_seed_shape_without_the_code(client: TestClient, app_a: TestApp) -> None:
    data = await create_order(client, app_a)
    assert set(data) == {"id", "cid", "code"}
    assert uuid.UUID(data["id"]).version == 4
    prefix = data["cid"]["prefix"]
    assert prefix in client.app[keys.CONFIG].callup_prefixes
    assert data["cid"] == {"prefix": prefix, "mask": prefix + "****"}
    assert data["code"] == {"len": 4}
    row = await order_row(client, data["id"])
    assert re.fullmatch(r"[0-9]{4}", row["code"]) and row["caller_prefix"] == prefix
    assert row["app_id"] == app_a.id and row["phone"] == "79001234567"
    assert (row["expires_at"] - row["created_at"]).total_seconds() == client.app[keys.CONFIG].callup_code_ttl
    assert (await statuses(client, data["id"]))[0] == "created"


async def test_scheme_2_returns_the_code_value(client: TestClient, app_a: TestApp) -> None:
    data = await create_order(client, app_a, query="?fields=code.value")
    assert data["code"]["len"] == 4
    assert data["code"]["value"] == await order_code(client, data["id"])


async def test_scheme_3_uses_and_returns_the_apps_code(client: TestClient, app_a: TestApp) -> None:
    data = await create_order(client, app_a, code="0345")
    assert data["code"] == {"len": 4, "value": "0345"}
    assert await order_code(client, data["id"]) == "0345"


async def test_codes_and_prefixes_are_random(make_client, app_a: TestApp) -> None:
    client = await make_client(callup_prefixes=("7487260", "7487261", "7487262"), callup_phone_limit=MANY,
                               callup_app_rate=MANY)
    seen_codes, seen_prefixes = set(), set()
    for n in range(40):
        data = await create_order(client, app_a, f"7900123{n:04d}", query="?fields=code.value")
        seen_codes.add(data["code"]["value"])
        seen_prefixes.add(data["cid"]["prefix"])
    assert len(seen_codes) > 20                       # 40 draws from 10 000 codes
    assert seen_prefixes == {"7487260", "7487261", "7487262"}


async def test_get_order_masks_the_phone(client: TestClient, app_a: TestApp) -> None:
    data = await create_order(client, app_a, "79001234567")
    resp = await client.get(f"/v1/orders/{data['id']}", headers=app_a.headers)
    assert resp.status == 200
    body = await resp.json()
    assert body["errors"] is None
    order = body["data"]
    assert set(order) == {"id", "status", "phone", "created_at", "expires_at", "attempts"}
    assert order["id"] == data["id"] and order["phone"] == "*********67" and order["attempts"] == 0
    assert order["status"] in {"created", "calling", "called"}
    assert order["created_at"].endswith("Z") and order["expires_at"] > order["created_at"]


async def test_another_apps_order_is_not_found(client: TestClient, app_a: TestApp, make_app: AppFactory) -> None:
    other = await make_app("other")
    data = await create_order(client, app_a)
    resp = await client.get(f"/v1/orders/{data['id']}", headers=other.headers)
    assert resp.status == 404
    assert error_of(await resp.json())[0] == "order_not_found"


async def test_apps_me(client: TestClient, app_a: TestApp) -> None:
    resp = await client.get("/v1/apps/me", headers=app_a.headers)
    assert await resp.json() == {"data": {"id": app_a.id, "name": "app A"}, "errors": None}


async def _refused(client: TestClient, headers: dict[str, str]) -> None:
    for method, path in (("POST", "/v1/orders"), ("GET", f"/v1/orders/{uuid.uuid4()}"),
                         ("GET", f"/v1/auth/{uuid.uuid4()}/1234"), ("GET", "/v1/apps/me")):
        resp = await client.request(method, path, json={"phone": "79001234567"}, headers=headers)
        assert resp.status == 403, (method, path)
        assert await resp.json() == {"data": None, "errors": [{"message": "access denied", "code": "access_denied"}]}


async def test_missing_unknown_and_malformed_tokens_are_access_denied(client: TestClient, make_user) -> None:
    await _refused(client, {})
    await _refused(client, {"X-Application-Token": str(uuid.uuid4())})
    await _refused(client, {"X-Application-Token": "not-a-uuid"})
    user = await make_user(role="admin")                  # a user, even an admin, is not an app
    await _refused(client, user.headers)


async def test_blocked_and_deleted_apps_are_access_denied(client: TestClient, make_app: AppFactory) -> None:
    blocked, deleted = await make_app("blocked"), await make_app("deleted")
    await create_order(client, blocked, "79001112233")
    async with transaction(client.app[keys.DB]) as conn:
        await conn.execute(update(apps).where(apps.c.id == blocked.id).values(blocked_at=apps.c.created_at))
        await conn.execute(update(apps).where(apps.c.id == deleted.id).values(deleted_at=apps.c.created_at))
    await _refused(client, blocked.headers)
    await _refused(client, deleted.headers)


async def test_unknown_v1_path_and_method_answer_the_envelope(client: TestClient, app_a: TestApp) -> None:
    resp = await client.get("/v1/nothing", headers=app_a.headers)
    assert resp.status == 404 and error_of(await resp.json())[0] == "not_found"
    resp = await client.delete("/v1/orders", headers=app_a.headers)
    assert resp.status == 405 and error_of(await resp.json())[0] == "method_not_allowed"


async def test_v1_routes_are_documented(client: TestClient) -> None:
    spec = await (await client.get("/openapi.json")).json()
    for path in ("/v1/orders", "/v1/orders/{order_id}", "/v1/auth/{order_id}/{order_code}", "/v1/apps/me",
                 "/v1/provider/events", "/api/callup/apps/", "/api/callup/apps/{id}/rotate-token/"):
        assert path in spec["paths"], path
    schemas = spec["components"]["schemas"]
    assert schemas and all(re.fullmatch(r"[A-Za-z0-9._-]+", name) for name in schemas)


def test_bad_caller_prefixes_fail_at_start(config) -> None:
    for prefixes in ((), ("748726",), ("7487260", "74872x1")):
        with pytest.raises(ValueError, match="CALLUP_PREFIXES"):
            create_app(dataclasses.replace(config, callup_prefixes=prefixes))
