"""Validation speaks Russian on every surface and for every pydantic error type (SPEC §2.3, issue 12),
and integers sent as strings follow one rule everywhere (SPEC §2.4 decision in README)."""

from __future__ import annotations

import re
import typing
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic_core.core_schema import ErrorType

from backend.api.messages import MESSAGES, message_for
from tests.conftest import TestUser, UserFactory

CYRILLIC = re.compile(r"[А-Яа-яЁё]")
# Words of pydantic's English messages; none may reach a client.
ENGLISH = re.compile(r"\b(Input|should|Unable|Field|required|valid|or|be|must|Value error)\b")


def assert_russian(message: str) -> None:
    assert CYRILLIC.search(message), message
    assert not ENGLISH.search(message), message


def messages_of(body: Any) -> list[str]:
    """Every human message in an error body of any surface style."""
    found: list[str] = []
    if isinstance(body, dict):
        for key, value in body.items():
            if key in ("message", "detail") and isinstance(value, str):
                found.append(value)
            elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                found.extend(value)
            else:
                found.extend(messages_of(value))
    elif isinstance(body, list):
        for item in body:
            found.extend(messages_of(item))
    return found


def test_every_pydantic_error_type_has_a_russian_message() -> None:
    """A pydantic upgrade that adds an error type fails here instead of leaking English."""
    missing = sorted(set(typing.get_args(ErrorType)) - set(MESSAGES))
    assert missing == []
    contexts = {"gt": 1, "ge": 1, "lt": 1, "le": 1, "multiple_of": 2, "min_length": 1, "max_length": 2,
                "max_digits": 3, "decimal_places": 3, "whole_digits": 3, "expected": "'a' or 'b'",
                "discriminator": "'type'", "expected_tags": "'a', 'b'", "error": "Ошибка.", "tag": "x"}
    for kind in MESSAGES:
        assert_russian(message_for({"type": kind, "msg": "Input should be valid", "ctx": contexts}))


def test_unknown_type_and_missing_context_stay_russian() -> None:
    assert_russian(message_for({"type": "some_future_type", "msg": "Input should be a thing"}))
    assert_russian(message_for({"type": "greater_than", "msg": "Input should be greater", "ctx": {}}))
    assert message_for({"type": "literal_error", "msg": "", "ctx": {"expected": "'web' or 'mobile'"}}) == \
        "Недопустимое значение. Допустимые значения: web, mobile."


# (method, path, body, field whose message is checked, the bad value)
CASES = [
    ("POST", "/api/bookings", {"car": 1e30}, "car"),
    ("POST", "/api/bookings", {"car": "1e30"}, "car"),
    ("POST", "/api/bookings", {"car": 10**30}, "car"),
    ("POST", "/api/bookings", {"car": 1.5}, "car"),
    ("POST", "/api/bookings", {"car": True}, "car"),
    ("POST", "/api/bookings", {"car": [1]}, "car"),
    ("POST", "/api/bookings", {}, "car"),
    ("POST", "/api/passenger-car-norms/", {"car": 1, "season": "summer", "city_norm": "NaN", "area_norm": "1",
                                           "date": "2024-09-01"}, "city_norm"),
    ("POST", "/api/passenger-car-norms/", {"car": 1, "season": "summer", "city_norm": "Infinity", "area_norm": "1",
                                           "date": "2024-09-01"}, "city_norm"),
    ("POST", "/api/passenger-car-norms/", {"car": 1, "season": "winter2", "city_norm": "1", "area_norm": "1",
                                           "date": "2024-13-01"}, "season"),
    ("POST", "/api/passenger-car-norms/", {"car": 1, "season": "summer", "city_norm": "1", "area_norm": "1",
                                           "date": "2024-13-01"}, "date"),
    ("POST", "/api/auth/login/", {"login": "x", "password": "y", "client": "tablet"}, "client"),
    ("POST", "/api/auth/login/", {"login": ["x"], "password": "y"}, "login"),
    ("POST", "/chats", {"user_id": 1e30}, "user_id"),
    ("POST", "/chats", {"user_id": {"a": 1}}, "user_id"),
    ("POST", "/chats", {"user_id": -1}, "user_id"),
    ("POST", "/chats/1/messages", {"text": "x" * 5000}, "text"),
    ("POST", "/users", {"email": "a@b.example", "password": "p" * 10, "name": 5}, "name"),
    ("POST", "/auth/login", {"identifier": 5, "password": "x"}, "identifier"),
    ("POST", "/auth/refresh", {"refresh_token": None}, "refresh_token"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), CASES, ids=[f"{c[1]}:{c[3]}" for c in CASES])
async def test_field_errors_are_russian_on_every_surface(client: TestClient, admin: TestUser, method: str,
                                                         path: str, body: Any, field: str) -> None:
    resp = await client.request(method, path, json=body, headers=admin.headers)
    data = await resp.json()
    assert resp.status in (400, 422), data
    assert field in str(data), data              # the field is named
    found = messages_of(data)
    assert found, data
    for message in found:
        assert_russian(message)


async def test_callup_envelope_field_errors_are_russian(client: TestClient, admin: TestUser) -> None:
    resp = await client.post("/api/callup/apps/", json={"name": "probe"}, headers=admin.headers)
    assert resp.status == 201, await resp.text()
    token = (await resp.json())["token"]
    for body in ({"phone": 1e30}, {"phone": ["7"]}, {}):
        resp = await client.post("/v1/orders", json=body, headers={"X-Application-Token": token})
        data = await resp.json()
        assert resp.status == 400 and data["data"] is None, data
        for message in messages_of(data):
            assert_russian(message)


# ---- integers sent as strings: one rule (accepted as integers) on every surface --------------------

async def test_numeric_strings_are_integers_everywhere(client: TestClient, admin: TestUser,
                                                       make_user: UserFactory) -> None:
    other = await make_user(role="client")
    resp = await client.post("/chats", json={"user_id": str(other.id)}, headers=admin.headers)
    assert resp.status in (200, 201), await resp.text()
    chat = await resp.json()

    car = await client.post("/api/passenger-cars/", json={"number": "S001AA54", "brand": "Lada", "model": "Vesta",
                                                          "shared": True, "lat": "55.03", "lon": "82.92",
                                                          "fuel_level": "40", "tariff_per_minute": "7.5"},
                            headers=admin.headers)
    car_id = (await car.json())["id"]
    resp = await client.post("/api/passenger-car-norms/", json={"car": str(car_id), "season": "summer",
                                                                "city_norm": "0.090", "area_norm": "0.110",
                                                                "date": "2024-09-01"}, headers=admin.headers)
    assert resp.status == 201, await resp.text()
    customer = await make_user(role="client", phone="+79001234567")
    resp = await client.post("/api/bookings", json={"car": str(car_id)}, headers=customer.headers)
    assert resp.status == 201, await resp.text()

    resp = await client.post("/api/callup/apps/", json={"name": "numeric", "owner": str(admin.id)},
                             headers=admin.headers)
    assert resp.status == 201 and (await resp.json())["owner"] == admin.id, await resp.text()
    role = await (await client.post("/api/roles/", json={"name": "tourist"}, headers=admin.headers)).json()
    resp = await client.post("/api/permissions/", json={"role": str(role["id"])}, headers=admin.headers)
    assert resp.status == 201, await resp.text()

    async with client.ws_connect("/ws", headers=admin.headers) as ws:
        await ws.send_json({"type": "send", "chat_id": str(chat["id"]), "text": "hi", "id": 1})
        reply = await ws.receive_json(timeout=5)
        while reply.get("type") != "ack" and reply.get("type") != "error":
            reply = await ws.receive_json(timeout=5)
        assert reply["type"] == "ack", reply


@pytest.mark.parametrize("value", [True, "8.5", "8.0", "+8", " 8", "8_000", "8a", " ", "", 8.5, "٨", None])
@pytest.mark.parametrize(("path", "field"), [("/chats", "user_id"), ("/api/bookings", "car")])
async def test_non_integers_are_refused_alike(client: TestClient, admin: TestUser, path: str, field: str,
                                              value: Any) -> None:
    resp = await client.post(path, json={field: value}, headers=admin.headers)
    data = await resp.json()
    assert resp.status == 400, data
    assert field in str(data)
    for message in messages_of(data):
        assert_russian(message)
