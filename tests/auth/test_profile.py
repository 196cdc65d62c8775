"""/profile/signup and /profile (SPEC §4.1, §11.6, §11.13) and the suite-wide password guard."""

from __future__ import annotations

import json

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from backend import keys
from tests.conftest import UserFactory

SIGNUP = {"login": "newbie", "password": "long-enough-1", "name": "Пётр", "surname": "Петров",
          "phone": "8 (900) 555-11-22", "email": "newbie@example.com", "driver_license": "7700123456"}


async def test_signup_creates_a_pending_client(client: TestClient) -> None:
    resp = await client.post("/profile/signup", json=SIGNUP)
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    client_role = await role_id(client, "client")
    assert body == {"id": body["id"], "login": "newbie", "name": "Пётр", "surname": "Петров", "last_name": "",
                    "phone": "+79005551122", "driver_license": "7700123456", "role": client_role,
                    "deleted_at": None, "email": "newbie@example.com", "client_status": "pending"}
    assert "sessid=" in resp.headers["Set-Cookie"]
    # The new client can sign in (pending clients are not blocked).
    signin = await client.post("/profile/signin", json={"login": "NEWBIE@example.com", "password": "long-enough-1"})
    assert signin.status == 200
    assert (await signin.json())["client_status"] == "pending"


async def role_id(client: TestClient, name: str) -> int:
    from sqlalchemy import select

    from backend.auth.tables import roles
    from backend.db import read

    async with read(client.app[keys.DB]) as conn:
        return int((await conn.execute(select(roles.c.id).where(roles.c.name == name))).scalar_one())


async def test_signup_publishes_client_registered(client: TestClient) -> None:
    pubsub = client.app[keys.REDIS].pubsub()
    channel = client.app[keys.BUS].redis_channel("dashboard")
    await pubsub.subscribe(channel)
    try:
        await pubsub.get_message(timeout=1)            # the subscribe confirmation
        resp = await client.post("/profile/signup", json=SIGNUP)
        assert resp.status == 201
        message = None
        for _ in range(20):
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
            if message is not None:
                break
        assert message is not None
        raw = message["data"]
        # Stream channels prefix the frame with "<offset> <epoch> " (backend/realtime/streams.py).
        frame = json.loads(raw[raw.index(b"{"):] if isinstance(raw, bytes) else raw[raw.index("{"):])
        assert frame["event"] == "client.registered"
        assert frame["data"]["login"] == "newbie"
    finally:
        await pubsub.unsubscribe(channel)
        await pubsub.aclose()


@pytest.mark.parametrize(("change", "field"), [
    ({"login": "Taken"}, "login"),
    ({"email": "TAKEN@example.com"}, "email"),
    ({"phone": "+79001234567"}, "phone"),
])
async def test_signup_duplicates_are_field_errors(client: TestClient, make_user: UserFactory,
                                                  change: dict, field: str) -> None:
    await make_user(role="client", login="taken", email="taken@example.com", phone="79001234567")
    resp = await client.post("/profile/signup", json={**SIGNUP, **change})
    assert resp.status == 400
    body = await resp.json()
    assert list(body) == [field]
    assert isinstance(body[field][0], str)


async def test_signup_validation(client: TestClient) -> None:
    short = await client.post("/profile/signup", json={**SIGNUP, "password": "short"})
    assert short.status == 400
    assert await short.json() == {"password": ["Пароль должен содержать не менее 8 символов."]}
    phone = await client.post("/profile/signup", json={**SIGNUP, "phone": "12345"})
    assert phone.status == 400 and list(await phone.json()) == ["phone"]
    email = await client.post("/profile/signup", json={**SIGNUP, "email": "not-an-email"})
    assert email.status == 400 and list(await email.json()) == ["email"]
    missing = await client.post("/profile/signup", json={"password": "long-enough-1"})
    assert missing.status == 400
    assert await missing.json() == {"login": ["Обязательное поле."]}
    broken = await client.post("/profile/signup", data="{", headers={"Content-Type": "application/json"})
    assert broken.status == 400
    assert (await broken.json())["code"] == "parse_error"


async def test_profile_needs_a_session_or_token(client: TestClient, make_user: UserFactory) -> None:
    anonymous = await client.get("/profile")
    assert anonymous.status == 401
    user = await make_user(role="operator", email="op@example.com")
    resp = await client.get("/profile", headers=user.headers)
    assert resp.status == 200
    body = await resp.json()
    assert body["email"] == "op@example.com" and body["client_status"] == "approved"
    assert (await client.post("/profile")).status == 405


async def test_signout_of_an_anonymous_session(client: TestClient) -> None:
    resp = await client.post("/profile/signout")
    assert resp.status == 200
    assert "sessid=" in resp.headers["Set-Cookie"]


async def test_password_guard_catches_leaks(make_client) -> None:
    async def leaky(request: web.Request) -> web.Response:
        return web.json_response({"results": [{"user": {"password_hash": "x"}}]})

    client = await make_client(setup=lambda app: app.router.add_get("/zz-leaky", leaky))
    with pytest.raises(AssertionError, match="password_hash"):
        await client.get("/zz-leaky")



async def test_password_guard_catches_leaks_in_websocket_frames(make_client, admin) -> None:
    """The guard also reads /ws frames: an event carrying a password fails the test that receives it."""
    client = await make_client()
    async with client.ws_connect("/ws", headers=admin.headers) as ws:
        await client.app[keys.BUS].publish(f"user:{admin.id}", "leak", {"user": {"password": "x"}})
        with pytest.raises(AssertionError, match="password"):
            await ws.receive_json(timeout=5)
