"""Every `/api/*` GET route answers with and without its trailing slash (issue 12: `/api/cars/` was 404)."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient

from tests.conftest import TestUser

PARAM = re.compile(r"\{[^}]+\}")


async def test_every_api_get_route_takes_both_forms(client: TestClient, admin: TestUser) -> None:
    paths = sorted({PARAM.sub("1", route.resource.canonical).rstrip("/")
                    for route in client.app.router.routes()
                    if route.method == "GET" and route.resource is not None
                    and route.resource.canonical.startswith("/api/")})
    assert "/api/cars" in paths and len(paths) > 20, paths
    for path in paths:
        bare = await client.get(path, headers=admin.headers)
        slashed = await client.get(path + "/", headers=admin.headers)
        # A missing row is 404 in both forms; a router 404 in one form only is the bug.
        assert bare.status == slashed.status, (path, bare.status, slashed.status, await slashed.text())
        assert bare.status != 405, path


async def test_public_cars_with_slash(client: TestClient) -> None:
    resp = await client.get("/api/cars/")
    assert resp.status == 200 and await resp.json() == []
