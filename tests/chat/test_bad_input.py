"""Bad input on the messenger paths: a mnemonic-style 4xx (SPEC §2.3), never a 500, the database unchanged."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.chat.conftest import count_chats, count_messages, open_chat
from tests.chat.test_users import row_of
from tests.conftest import TestUser

BIG = "9" * 30          # far past bigint


def mnemonic(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("error"), str) and isinstance(body.get("message"), str)


async def test_malformed_bodies(client: TestClient, alice: TestUser, bob: TestUser) -> None:
    chat = await open_chat(client, alice, bob)
    two_mib = b'{"text": "' + b"x" * (2 << 20) + b'"}'
    raw_cases = [
        (b"{", "application/json", 400, "parse_error"),
        (b"", "application/json", 400, "parse_error"),
        (b"[1]", "application/json", 400, "validation_error"),
        (b'"text"', "application/json", 400, "validation_error"),
        (b"text=hi", "text/plain", 415, "unsupported_media_type"),
        (b"text=hi", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (two_mib, "application/json", 413, "request_too_large"),
    ]
    for path in (f"/chats/{chat['id']}/messages", "/chats", f"/chats/{chat['id']}/read", "/users", "/login",
                 f"/users/{alice.id}"):
        method = "PUT" if path.startswith("/users/") else "POST"
        for raw, content_type, status, code in raw_cases:
            resp = await client.request(method, path, data=raw,
                                        headers={**alice.headers, "Content-Type": content_type})
            body = await resp.json()
            assert (resp.status, body.get("error")) == (status, code), (path, raw[:20], content_type, body)
            assert mnemonic(body)
    assert await count_messages(client) == 0
    assert await count_chats(client) == 1


async def test_bad_fields(client: TestClient, alice: TestUser, bob: TestUser) -> None:
    chat = await open_chat(client, alice, bob)
    messages = f"/chats/{chat['id']}/messages"
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        ("POST", messages, {}, "text"),
        ("POST", messages, {"text": ""}, "text"),
        ("POST", messages, {"text": " \n\t"}, "text"),
        ("POST", messages, {"text": "x" * 4001}, "text"),
        ("POST", messages, {"text": 5}, "text"),
        ("POST", messages, {"text": "ok", "client_id": ""}, "client_id"),
        ("POST", messages, {"text": "ok", "client_id": "c" * 101}, "client_id"),
        ("POST", "/chats", {}, "user_id"),
        ("POST", "/chats", {"user_id": "2.0"}, "user_id"),       # numeric strings are integers ("2" is fine)
        ("POST", "/chats", {"user_id": True}, "user_id"),
        ("POST", "/chats", {"user_id": 2.5}, "user_id"),
        ("POST", "/chats", {"user_id": 0}, "user_id"),
        ("POST", "/chats", {"user_id": int(BIG)}, "user_id"),
        ("POST", f"/chats/{chat['id']}/read", {}, "message_id"),
        ("POST", f"/chats/{chat['id']}/read", {"message_id": None}, "message_id"),
        ("POST", "/login", {"email": "alice@example.com"}, "password"),
        ("POST", "/users", {"email": "a@b.example", "password": "long-enough-1", "name": "n" * 151}, "name"),
        # PostgreSQL text cannot store U+0000: a field error, not a driver error.
        ("POST", messages, {"text": "a\u0000b"}, "text"),
        ("POST", messages, {"text": "ok", "client_id": "\u0000"}, "client_id"),
        ("POST", "/users", {"email": "a@b.example", "password": "long-enough-1", "status": "\u0000"}, "status"),
        ("POST", "/login", {"email": "alice\u0000", "password": "long-enough-1"}, "email"),
        ("PUT", f"/users/{alice.id}", {"email": None, "username": "a", "name": "\u0000", "status": ""}, "name"),
    ]
    for method, path, body, field in cases:
        resp = await client.request(method, path, json=body, headers=alice.headers)
        reply = await resp.json()
        assert resp.status == 400, (path, body, reply)
        assert reply["error"] == "validation_error" and field in reply["fields"], (path, body, reply)
    exact = await client.post(messages, json={"text": "я" * 4000}, headers=alice.headers)
    assert exact.status == 201                                  # 4000 characters, not bytes
    assert await count_messages(client) == 1


async def test_ids_and_queries(client: TestClient, alice: TestUser, bob: TestUser) -> None:
    chat = await open_chat(client, alice, bob)
    for path in ("/chats/abc/messages", "/chats/-1/messages", "/chats/1.5/read", "/photos/abc", "/photos/-1"):
        resp = await client.get(path, headers=alice.headers)
        assert resp.status in (404, 405), path
        assert mnemonic(await resp.json()), path
    for path in (f"/chats/{BIG}/messages", f"/chats/{BIG}/read"):
        resp = await client.post(path, json={"text": "x", "message_id": 1}, headers=alice.headers)
        assert (resp.status, (await resp.json())["error"]) == (400, "chat_not_found"), path
    big_photo = await client.get(f"/photos/{BIG}", headers=alice.headers)
    assert (big_photo.status, (await big_photo.json())["error"]) == (400, "user_not_found")
    history = f"/chats/{chat['id']}/messages"
    for query in ({"limit": "0"}, {"limit": "201"}, {"limit": "x"}, {"before": "abc"}, {"after": "-5"},
                  {"before": BIG}):
        resp = await client.get(history, params=query, headers=alice.headers)
        body = await resp.json()
        assert (resp.status, body["error"]) == (400, "validation_error"), (query, body)
    for path, params in (("/users/" + "a" * 151, None), ("/users/%00", None), ("/users/search", {"q": "\x00"}),
                         ("/users/search", None)):
        resp = await client.get(path, params=params, headers=alice.headers)
        assert (resp.status, (await resp.json())["error"]) == (400, "validation_error"), path


async def test_wrong_methods_are_405(client: TestClient, alice: TestUser) -> None:
    before = await row_of(client, alice.id)
    for method, path in (("GET", "/login"), ("POST", "/logout"), ("DELETE", "/chats"), ("PATCH", f"/users/{alice.id}"),
                         ("DELETE", f"/users/{alice.id}"), ("PUT", "/users/alice"), ("PUT", "/photos"),
                         ("DELETE", "/chats/1/messages"), ("GET", "/chats/1/read")):
        resp = await client.request(method, path, headers=alice.headers)
        body = await resp.json()
        assert (resp.status, body["error"]) == (405, "method_not_allowed"), (method, path, body)
        assert "Allow" in resp.headers
    assert await row_of(client, alice.id) == before
