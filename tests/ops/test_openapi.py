"""/openapi.json documents the routes; /docs works offline."""

from __future__ import annotations

import re

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


# Routes that are not REST operations: protocol upgrades, probes, pages and the documents themselves.
UNDOCUMENTED = {"/ws", "/sse", "/health", "/health/live", "/health/ready", "/metrics", "/openapi.json",
                "/asyncapi.json", "/docs", "/dashboard", "/favicon.ico"}


def _registered(client: TestClient) -> set[tuple[str, str]]:
    found = set()
    for resource in client.app.router.resources():
        info = resource.get_info()
        path = info.get("formatter") or info.get("path") or ""
        if not path or path.startswith("/docs/static") or path.startswith("/dashboard/") or path in UNDOCUMENTED:
            continue
        for route in resource:
            if route.method not in ("HEAD", "OPTIONS", "*"):
                found.add((route.method, re.sub(r"\{(\w+)(?::[^}]*)?\}", r"{\1}", path).rstrip("/")))
    return found


async def test_every_registered_route_is_documented(client: TestClient) -> None:
    spec = await (await client.get("/openapi.json")).json()
    documented = {(method.upper(), path.rstrip("/")) for path, ops in spec["paths"].items() for method in ops}
    registered = _registered(client)
    assert len(registered) > 60
    assert registered - documented == set()


async def test_security_entries_match_what_the_router_enforces(client: TestClient) -> None:
    """Each operation's `security` comes from the rule the router enforces: an anonymous call to an
    operation documented as protected is refused (401/403), and one documented as open is not."""
    spec = await (await client.get("/openapi.json")).json()
    schemes = spec["components"]["securitySchemes"]
    protected = 0
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert "security" in operation, f"{method} {path} has no security entry"
            for requirement in operation["security"]:
                assert set(requirement) <= set(schemes)
            url = re.sub(r"\{\w+\}", "1", path)
            resp = await client.request(method.upper(), url, json={}, cookies={})
            refused = resp.status in (401, 403)
            if operation["security"]:
                protected += 1
                assert refused, f"{method} {path} is documented as protected but answered {resp.status}"
            else:
                assert resp.status != 401, f"{method} {path} is documented as open but answered 401"
    assert protected > 80
