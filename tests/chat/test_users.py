"""Messenger users (SPEC §7.1, §11.22): registration, cookie login, profiles, search."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from backend import keys
from backend.auth.tables import users
from backend.db import read
from tests.conftest import TestUser, UserFactory

USER_KEYS = {"id", "email", "username", "name", "status", "phone", "avatar_url"}


async def register(client: TestClient, expect: int = 201, **body: Any) -> dict[str, Any]:
    resp = await client.post("/users", json=body)
    assert resp.status == expect, await resp.text()
    return await resp.json()


async def row_of(client: TestClient, user_id: int) -> dict[str, Any]:
    async with read(client.app[keys.DB]) as conn:
        return dict((await conn.execute(select(users).where(users.c.id == user_id))).mappings().one())


async def test_register_answers_the_user_and_makes_a_pending_client(client: TestClient) -> None:
    user = await register(client, email="Ann@Example.com", password="long-enough-1", username="ann",
                          name="Ann", status="hi", phone="89005556677")
    assert set(user) == USER_KEYS
    assert user | {"id": 0} == {"id": 0, "email": "Ann@Example.com", "username": "ann", "name": "Ann",
                                "status": "hi", "phone": "+79005556677", "avatar_url": None}
    row = await row_of(client, user["id"])
    assert (row["client_status"], row["login"]) == ("pending", "ann")
    assert row["password_hash"].startswith("$argon2id$")


async def test_register_without_username_takes_the_free_local_part(client: TestClient) -> None:
    first = await register(client, email="sam@one.example", password="long-enough-1")
    second = await register(client, email="SAM@two.example", password="long-enough-1")
    assert first["username"] == "sam"
    assert second["username"].lower().startswith("sam") and second["username"].lower() != "sam"
    assert "@" not in second["username"]         # never the email: usernames are public


async def test_duplicates_and_bad_fields_are_400_with_a_code(client: TestClient) -> None:
    await register(client, email="dup@example.com", password="long-enough-1", username="dup")
    cases = [
        ({"email": "DUP@example.com", "password": "long-enough-1"}, "email_taken"),
        ({"email": "other@example.com", "password": "long-enough-1", "username": "DUP"}, "username_taken"),
        ({"email": "not-an-email", "password": "long-enough-1"}, "validation_error"),
        ({"email": "short@example.com", "password": "short"}, "validation_error"),
        ({"email": "phone@example.com", "password": "long-enough-1", "phone": "123"}, "validation_error"),
        ({"email": "bad@example.com", "password": "long-enough-1", "username": "a/b"}, "validation_error"),
        ({"password": "long-enough-1"}, "validation_error"),
    ]
    for body, code in cases:
        reply = await register(client, expect=400, **body)
        assert reply["error"] == code, (body, reply)
        assert reply["message"]
    short = await register(client, expect=400, email="s@example.com", password="short")
    assert list(short["fields"]) == ["password"]


async def test_concurrent_registrations_of_one_email_make_one_user(two_apps: tuple[TestClient, TestClient]) -> None:
    a, b = two_apps
    body = {"email": "race@example.com", "password": "long-enough-1"}
    replies = await asyncio.gather(*(app.post("/users", json=body) for app in (a, b, a, b)))
    assert sorted(r.status for r in replies) == [201, 400, 400, 400]
    assert {(await r.json()).get("error") for r in replies if r.status == 400} == {"email_taken"}


async def test_login_binds_and_rotates_the_sessid_shared_with_profile(client: TestClient) -> None:
    user = await register(client, email="kate@example.com", password="long-enough-1", username="kate")
    anonymous = await client.get("/users")
    assert anonymous.status == 401
    assert (await anonymous.json())["error"] == "not_authenticated"
    before = client.session.cookie_jar.filter_cookies(client.make_url("/"))["sessid"].value
    resp = await client.post("/login", json={"email": "KATE@example.com", "password": "long-enough-1"})
    assert resp.status == 200
    assert await resp.json() == user
    after = client.session.cookie_jar.filter_cookies(client.make_url("/"))["sessid"].value
    assert after != before                                   # rotated: no session fixation
    assert await (await client.get("/users")).json() == user
    profile = await client.get("/profile")                   # the car-sharing surface, same session
    assert (await profile.json())["id"] == user["id"]
    out = await client.delete("/logout")
    assert out.status == 200
    assert (await client.get("/users")).status == 401
    assert (await client.delete("/logout")).status == 200      # idempotent


async def test_wrong_credentials_are_400_then_the_limit_429(client: TestClient) -> None:
    await register(client, email="lim@example.com", password="long-enough-1")
    for body in ({"email": "lim@example.com", "password": "wrong-password"},
                 {"email": "nobody@example.com", "password": "wrong-password"}):
        resp = await client.post("/login", json=body)
        assert resp.status == 400
        assert (await resp.json())["error"] == "invalid_credentials"
    for _ in range(4):
        await client.post("/login", json={"email": "lim@example.com", "password": "wrong-password"})
    limited = await client.post("/login", json={"email": "lim@example.com", "password": "long-enough-1"})
    assert limited.status == 429
    assert (await limited.json())["error"] == "rate_limited"
    assert "Retry-After" in limited.headers


async def test_other_users_email_and_phone_are_hidden(client: TestClient, alice: TestUser, bob: TestUser,
                                                      admin: TestUser) -> None:
    seen_by_bob = await (await client.get(f"/users/{alice.id}", headers=bob.headers)).json()
    assert (seen_by_bob["email"], seen_by_bob["phone"], seen_by_bob["username"]) == (None, None, "alice")
    own = await (await client.get(f"/users/{alice.id}", headers=alice.headers)).json()
    assert (own["email"], own["phone"]) == ("alice@example.com", "+79001112233")
    assert own == await (await client.get("/users", headers=alice.headers)).json()
    managed = await (await client.get(f"/users/{alice.id}", headers=admin.headers)).json()
    assert managed["email"] == "alice@example.com"


async def test_unknown_ids_are_400_user_not_found(client: TestClient, alice: TestUser) -> None:
    for path in ("/users/999999", "/users/" + "9" * 30):
        resp = await client.get(path, headers=alice.headers)
        assert resp.status == 400, path
        assert (await resp.json())["error"] == "user_not_found"
    assert (await client.get(f"/users/{alice.id}")).status == 401


def full(**fields: Any) -> dict[str, Any]:
    return {"email": "new@example.com", "username": "alice2", "name": "Alice B", "status": "busy", **fields}


async def test_put_replaces_the_editable_fields(client: TestClient, alice: TestUser) -> None:
    resp = await client.put(f"/users/{alice.id}", json=full(id=alice.id), headers=alice.headers)
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"id": alice.id, "email": "new@example.com", "username": "alice2",
                                 "name": "Alice B", "status": "busy", "phone": "+79001112233", "avatar_url": None}
    cleared = await client.put(f"/users/{alice.id}", json=full(phone=None), headers=alice.headers)
    assert (await cleared.json())["phone"] is None
    row = await row_of(client, alice.id)
    assert (row["login"], row["username"]) == ("alice", "alice2")       # the login is not editable here


async def test_put_refusals(client: TestClient, alice: TestUser, bob: TestUser, admin: TestUser) -> None:
    before = await row_of(client, alice.id)
    cases = [
        (bob, alice.id, full(), 403, "forbidden"),
        (alice, alice.id, {"email": "x@example.com", "username": "x", "name": "X"}, 400, "validation_error"),
        (alice, alice.id, full(username="bob"), 400, "username_taken"),
        (alice, alice.id, full(email="BOB@example.com"), 400, "email_taken"),
        (alice, alice.id, full(id=bob.id), 400, "id_mismatch"),
        (alice, alice.id, full(password="new-password-1"), 400, "validation_error"),
        (admin, 999999, full(), 400, "user_not_found"),
    ]
    for who, target, body, status, code in cases:
        resp = await client.put(f"/users/{target}", json=body, headers=who.headers)
        assert resp.status == status, (body, await resp.text())
        assert (await resp.json())["error"] == code, body
    assert await row_of(client, alice.id) == before
    by_admin = await client.put(f"/users/{alice.id}", json=full(), headers=admin.headers)
    assert by_admin.status == 200


async def test_search_by_username(client: TestClient, make_user: UserFactory, alice: TestUser) -> None:
    for login in ("Marta", "martin", "amart", "mark", "x_y", "x1y"):
        await make_user(role="client", login=login)
    await make_user(role="client", login="123abc")
    names = [u["username"] for u in (await (await client.get("/users/MART", headers=alice.headers)).json())["users"]]
    assert names[:2] == ["Marta", "martin"] and set(names) == {"Marta", "martin", "amart"}  # prefix first
    found = (await (await client.get("/users/mart", headers=alice.headers)).json())["users"]
    assert found and all(u["email"] is None and u["phone"] is None for u in found)
    underscore = await (await client.get("/users/x_y", headers=alice.headers)).json()
    assert [u["username"] for u in underscore["users"]] == ["x_y"]        # `_` is no wildcard
    percent = await (await client.get("/users/%25", headers=alice.headers)).json()
    assert percent == {"users": []}
    numeric = await (await client.get("/users/search", params={"q": "123"}, headers=alice.headers)).json()
    assert [u["username"] for u in numeric["users"]] == ["123abc"]
    assert (await client.get("/users/mart")).status == 401
    empty = await client.get("/users/search", params={"q": ""}, headers=alice.headers)
    assert empty.status == 400


async def test_search_returns_at_most_50(client: TestClient, make_user: UserFactory, alice: TestUser) -> None:
    await asyncio.gather(*(make_user(role="client", login=f"crowd{n:02d}") for n in range(55)))
    found = (await (await client.get("/users/crowd", headers=alice.headers)).json())["users"]
    assert len(found) == 50
