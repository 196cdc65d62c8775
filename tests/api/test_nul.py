"""A NUL character (which PostgreSQL text cannot hold) is a 4xx in every surface's style, never a 500."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.conftest import TestUser

NUL = "ad\u0000min"


async def test_nul_in_bodies_and_queries_is_refused(client: TestClient, admin: TestUser) -> None:
    cases = [
        ("POST", "/api/auth/login/", {"login": NUL, "password": "whatever-1"}, None, {}),
        ("POST", "/profile/signin", {"login": NUL, "password": "whatever-1"}, None, {}),
        ("POST", "/auth/login", {"identifier": NUL, "password": "whatever-1"}, None, {}),
        ("POST", "/login", {"email": NUL, "password": "whatever-1"}, None, {}),
        ("POST", "/api/roles/", {"name": NUL}, None, admin.headers),
        ("PATCH", f"/api/users/{admin.id}/", {"name": NUL}, None, admin.headers),
        ("GET", "/api/cars", None, {"bbox": "1,2,3,4\u0000"}, {}),
        ("GET", "/users/search", None, {"q": NUL}, admin.headers),
    ]
    for method, path, body, params, headers in cases:
        resp = await client.request(method, path, json=body, params=params, headers=headers)
        assert 400 <= resp.status < 500, (path, resp.status, await resp.text())
        assert "\u0000" not in await resp.text()
    # Nothing was created or renamed.
    roles = await (await client.get("/api/roles/", headers=admin.headers)).json()
    assert roles["results"] and all("\u0000" not in role["name"] for role in roles["results"])
