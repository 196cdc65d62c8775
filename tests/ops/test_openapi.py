"""/openapi.json documents the routes; /docs works offline."""

from __future__ import annotations

from aiohttp.test_utils import TestClient


async def test_openapi_lists_documented_routes(client: TestClient) -> None:
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    spec = await resp.json()
    assert spec["openapi"].startswith("3.1")
    for path, operations in spec["paths"].items():
        assert path.startswith("/")
        assert ":" not in path, "aiohttp regex leaked into an OpenAPI path"
        for operation in operations.values():
            assert operation["responses"]


async def test_docs_page_and_assets_are_local(client: TestClient) -> None:
    page = await (await client.get("/docs")).text()
    assert "/openapi.json" in page and "http" not in page.replace("http-equiv", "")
    asset = await client.get("/docs/static/swagger-ui-bundle.js")
    assert asset.status == 200 and len(await asset.read()) > 100_000
