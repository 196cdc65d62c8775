"""The Origin / content-type rule of cookie surfaces and CORS for ALLOWED_ORIGINS (SPEC §2.4, §11.7)."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.conftest import UserFactory

FOREIGN = "https://evil.example"
FRIEND = "https://a.example"


async def signed_in(client: TestClient, make_user: UserFactory) -> None:
    user = await make_user(role="client")
    resp = await client.post("/profile/signin", json={"login": user.login, "password": user.password})
    assert resp.status == 200


async def test_foreign_origin_refused_on_cookie_surfaces(client: TestClient, make_user: UserFactory) -> None:
    user = await make_user(role="client")
    resp = await client.post("/sign-in", json={"login": user.login, "password": user.password},
                             headers={"Origin": FOREIGN})
    assert resp.status == 403
    assert await resp.json() == {"detail": "Запрос с этого источника запрещён.", "code": "origin_not_allowed"}
    null = await client.post("/profile/signout", headers={"Origin": "null"})
    assert null.status == 403


async def test_own_origin_and_no_origin_pass(client: TestClient, make_user: UserFactory) -> None:
    user = await make_user(role="client")
    own = f"http://{client.server.host}:{client.server.port}"
    resp = await client.post("/sign-in", json={"login": user.login, "password": user.password},
                             headers={"Origin": own})
    assert resp.status == 200
    assert (await client.post("/profile/signout")).status == 200


async def test_allowed_origins_pass(make_client, make_user: UserFactory) -> None:
    client = await make_client(allowed_origins=(FRIEND,))
    user = await make_user(role="client")
    resp = await client.post("/sign-in", json={"login": user.login, "password": user.password},
                             headers={"Origin": FRIEND})
    assert resp.status == 200
    assert resp.headers["Access-Control-Allow-Origin"] == FRIEND
    assert resp.headers["Access-Control-Allow-Credentials"] == "true"
    refused = await client.post("/profile/signout", headers={"Origin": FOREIGN})
    assert refused.status == 403
    assert "Access-Control-Allow-Origin" not in refused.headers


async def test_cors_preflight(make_client) -> None:
    client = await make_client(allowed_origins=(FRIEND,))
    ok = await client.options("/profile/signin", headers={
        "Origin": FRIEND, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert ok.status == 200
    assert ok.headers["Access-Control-Allow-Origin"] == FRIEND
    assert ok.headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in ok.headers["Access-Control-Allow-Methods"]
    bad = await client.options("/profile/signin", headers={"Origin": FOREIGN, "Access-Control-Request-Method": "POST"})
    assert bad.status == 403
    assert "Access-Control-Allow-Origin" not in bad.headers


async def test_session_requests_must_be_json_or_multipart(client: TestClient, make_user: UserFactory) -> None:
    await signed_in(client, make_user)
    form = await client.patch("/api/users/1/", data={"name": "x"})
    assert form.status == 415
    assert (await form.json())["code"] == "unsupported_media_type"
    text = await client.post("/profile/signout", data="x", headers={"Content-Type": "text/plain"})
    assert text.status == 415
    assert (await client.get("/profile")).status == 200       # still signed in


async def test_session_authenticated_api_request_checks_origin(client: TestClient, make_user: UserFactory) -> None:
    # /api/users/ is not a cookie surface, but a cookie carried this request: CSRF rules apply.
    await signed_in(client, make_user)
    me = (await (await client.get("/profile")).json())["id"]
    resp = await client.patch(f"/api/users/{me}/", json={"name": "x"}, headers={"Origin": FOREIGN})
    assert resp.status == 403
    assert (await resp.json())["code"] == "origin_not_allowed"
    ok = await client.patch(f"/api/users/{me}/", json={"name": "Имя"})
    assert ok.status == 200
    assert (await ok.json())["name"] == "Имя"


async def test_bearer_requests_ignore_origin_off_cookie_surfaces(client: TestClient, admin) -> None:
    resp = await client.post("/api/roles/", json={"name": "tourist"}, headers={**admin.headers, "Origin": FOREIGN})
    assert resp.status == 201
