"""/openapi.json documents the routes; /docs works offline."""

from __future__ import annotations

import json
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


async def test_no_operation_has_a_default_response(client: TestClient) -> None:
    """Issue 10 item 12: a `default` response lets any status pass a conformance check; each operation
    lists its statuses, each error status with its surface's body."""
    spec = await (await client.get("/openapi.json")).json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            assert "default" not in statuses, f"{method} {path}"
            assert all(re.fullmatch(r"[1-5]\d\d", status) for status in statuses), f"{method} {path}: {statuses}"
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert "$ref" in schema or "anyOf" in schema, f"{method} {path} {status}"
    token_login = spec["paths"]["/auth/login"]["post"]["responses"]
    assert "422" in token_login and "400" not in token_login         # seed 003: bad bodies are 422
    assert spec["paths"]["/v1/orders"]["post"]["responses"]["403"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/EnvelopeError"}


async def test_lists_document_their_page(client: TestClient) -> None:
    """Every paginated list (SPEC §2.4) documents {count, next, previous, results} of its items."""
    spec = await (await client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    pages = 0
    for path, operations in spec["paths"].items():
        operation = operations.get("get")
        if operation is None or not any(param["name"] == "offset" for param in operation.get("parameters", [])):
            continue
        ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        page = schemas[ref.rsplit("/", 1)[1]]
        assert set(page["required"]) == {"count", "next", "previous", "results"}, path
        assert page["properties"]["results"]["type"] == "array", path
        pages += 1
    assert pages >= 17              # 14 generic resources, bookings, operator cars, clients
    resp = await client.get("/api/cars")
    assert isinstance(await resp.json(), list)          # SPEC §11.11: the public list is a plain array


async def test_times_are_documented_as_returned(client: TestClient) -> None:
    """Record times are HH:MM:SS without an offset (SPEC §2.4): not JSON Schema's `format: time`."""
    spec = await (await client.get("/openapi.json")).json()
    text = json.dumps(spec)
    assert '"format": "time"' not in text
    record = spec["components"]["schemas"]["PassengerRecordOutOut"]["properties"]["departure_time"]
    assert re.fullmatch(record["pattern"], "08:10:00") and not re.fullmatch(record["pattern"], "08:10:00+00:00")


async def test_user_paths_say_which_is_which(client: TestClient) -> None:
    """/users/{id} and /users/{name} share one shape: their parameters tell them apart (SPEC §7.1)."""
    spec = await (await client.get("/openapi.json")).json()
    by_id = spec["paths"]["/users/{id}"]["get"]["parameters"][0]
    by_name = spec["paths"]["/users/{name}"]["get"]["parameters"][0]
    assert by_id["schema"]["type"] == "integer"
    pattern = by_name["schema"]["pattern"]
    assert re.search(pattern, "ali") and re.search(pattern, "a1")
    assert not re.search(pattern, "42") and not re.search(pattern, "search")
