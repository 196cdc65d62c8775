"""Bad input on /v1 (SPEC §2.3, §6.2): every class gets its 4xx envelope, never a 500, and changes nothing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from backend import keys
from backend.callup.limits import app_key, phone_key
from tests.callup.conftest import TestApp, count_orders, create_order, error_of, order_row


async def _assert_refused(client: TestClient, app: TestApp, status: int, code: str, **request: Any) -> list[dict]:
    before = await count_orders(client)
    request.setdefault("headers", app.headers)
    resp = await client.request("POST", request.pop("path", "/v1/orders"), **request)
    body = await resp.json()
    assert resp.status == status, body
    assert body["data"] is None and body["errors"], body
    assert {error["code"] for error in body["errors"]} == {code}
    assert all(error["message"] for error in body["errors"])
    assert await count_orders(client) == before
    return body["errors"]


async def test_malformed_json(client: TestClient, app_a: TestApp) -> None:
    for raw in (b'{"phone": "79001234567"', b"", b"\xff\xfe", b"phone=79001234567"):
        await _assert_refused(client, app_a, 400, "parse_error", data=raw,
                              headers={**app_a.headers, "Content-Type": "application/json"})


async def test_wrong_content_type(client: TestClient, app_a: TestApp) -> None:
    await _assert_refused(client, app_a, 415, "unsupported_media_type", data=b'{"phone": "79001234567"}',
                          headers={**app_a.headers, "Content-Type": "text/plain"})
    await _assert_refused(client, app_a, 415, "unsupported_media_type", data={"phone": "79001234567"})


@pytest.mark.parametrize("phone", ["7900123456", "790012345678", "7900123456a", "+7900123456", "",
                                   "７９００１２３４５６７", 79001234567, None])
async def test_bad_phone(client: TestClient, app_a: TestApp, phone: Any) -> None:
    errors = await _assert_refused(client, app_a, 400, "validation_error", json={"phone": phone})
    assert [error["field"] for error in errors] == ["phone"]


@pytest.mark.parametrize("code", ["123", "12345", "12a4", "١٢٣٤", 1234])
async def test_bad_code(client: TestClient, app_a: TestApp, code: Any) -> None:
    errors = await _assert_refused(client, app_a, 400, "validation_error", json={"phone": "79001234567", "code": code})
    assert [error["field"] for error in errors] == ["code"]


async def test_one_message_per_problem(client: TestClient, app_a: TestApp) -> None:
    errors = await _assert_refused(client, app_a, 400, "validation_error",
                                   json={"phone": "123", "code": "1", "extra": True})
    assert sorted(error["field"] for error in errors) == ["code", "extra", "phone"]
    assert len({error["message"] for error in errors}) == 3


@pytest.mark.parametrize("body", [[], ["79001234567"], "79001234567", 5, {}, {"code": "1234"}])
async def test_body_that_is_not_an_order(client: TestClient, app_a: TestApp, body: Any) -> None:
    await _assert_refused(client, app_a, 400, "validation_error", json=body)


async def test_unknown_fields_value(client: TestClient, app_a: TestApp) -> None:
    errors = await _assert_refused(client, app_a, 400, "validation_error", path="/v1/orders?fields=code.secret",
                                   json={"phone": "79001234567"})
    assert errors[0]["field"] == "fields" and "code.secret" in errors[0]["message"]


async def test_refused_bodies_do_not_count_against_the_limits(client: TestClient, app_a: TestApp) -> None:
    await _assert_refused(client, app_a, 400, "validation_error", json={"phone": "79001234567", "code": "1"})
    redis, prefix = client.app[keys.REDIS], client.app[keys.CONFIG].redis_prefix
    assert await redis.exists(phone_key(prefix, "79001234567"), app_key(prefix, app_a.id)) == 0


async def test_unknown_and_malformed_order_ids_are_not_found(client: TestClient, app_a: TestApp) -> None:
    for order_id in (str(uuid.uuid4()), "not-a-uuid", "1", "x" * 300, "%00"):
        for path in (f"/v1/orders/{order_id}", f"/v1/auth/{order_id}/1234"):
            resp = await client.get(path, headers=app_a.headers)
            assert resp.status == 404, path
            assert error_of(await resp.json()) == ("order_not_found", "order not found")


async def test_malformed_code_in_the_check_path_is_a_400_and_costs_no_attempt(client: TestClient,
                                                                             app_a: TestApp) -> None:
    order = await create_order(client, app_a)
    for code in ("123", "12345", "abcd"):
        resp = await client.get(f"/v1/auth/{order['id']}/{code}", headers=app_a.headers)
        assert resp.status == 400
        body = await resp.json()
        assert body["errors"][0]["code"] == "validation_error" and body["errors"][0]["field"] == "order_code"
    assert (await order_row(client, order["id"]))["attempts"] == 0


async def test_oversized_body_is_413(client: TestClient, app_a: TestApp) -> None:
    await _assert_refused(client, app_a, 413, "request_too_large", data=b"{" + b" " * (2 << 20) + b"}",
                          headers={**app_a.headers, "Content-Type": "application/json"})
