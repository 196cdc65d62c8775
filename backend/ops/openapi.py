"""/openapi.json (OpenAPI 3.1 from the pydantic models of every route) and an offline /docs page."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from backend import keys
from backend.api.responses import respond
from backend.api.routing import Endpoint, endpoints

_PATH_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")
REF = "#/components/schemas/{model}"

ERROR_SCHEMA = {"type": "object", "description": "Error body in the surface's style (SPEC §2.3)"}


def _schema(model: type[BaseModel], components: dict[str, Any], mode: str) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]
    for name, definition in schema.pop("$defs", {}).items():
        components.setdefault(name, definition)
    name = model.__name__ if mode == "validation" else f"{model.__name__}Out"
    components.setdefault(name, schema)
    return {"$ref": REF.format(model=name)}


def _operation(endpoint: Endpoint, components: dict[str, Any]) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "integer" if name == "id" else "string"}}
        for name in _PATH_PARAM.findall(endpoint.path)
    ]
    if endpoint.query is not None:
        query_schema = endpoint.query.model_json_schema()
        required = set(query_schema.get("required", []))
        for name, prop in query_schema.get("properties", {}).items():
            params.append({"name": name, "in": "query", "required": name in required, "schema": prop})
    operation: dict[str, Any] = {"summary": endpoint.summary, "tags": [endpoint.tag],
                                 "operationId": f"{endpoint.method.lower()}_{endpoint.path}"}
    if params:
        operation["parameters"] = params
    if endpoint.body is not None:
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": _schema(endpoint.body, components, "validation")}}}
    success: dict[str, Any] = {"description": "OK"}
    if endpoint.response is not None and endpoint.status != 204:
        success["content"] = {"application/json": {"schema": _schema(endpoint.response, components,
                                                                      "serialization")}}
    operation["responses"] = {str(endpoint.status): success,
                              "default": {"description": "Error", "content": {
                                  "application/json": {"schema": ERROR_SCHEMA}}}}
    # The same Access object the router enforces: documentation cannot drift from the check.
    operation["security"] = endpoint.auth.security
    if endpoint.auth.any_of:
        operation["x-permission"] = [str(flag) for flag in endpoint.auth.any_of]
    return operation


def build_spec(app: web.Application) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every documented route of `app`."""
    components: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints(app):
        path = _PATH_PARAM.sub(lambda m: "{" + m.group(1) + "}", endpoint.path)
        paths.setdefault(path, {})[endpoint.method.lower()] = _operation(endpoint, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Realtime backend", "version": "0.1.0",
                 "description": "Car sharing, fleet waybills, CallUp, token auth and messenger APIs; "
                                "realtime events over GET /ws (see README)."},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": components, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            "session": {"type": "apiKey", "in": "cookie", "name": "sessid"},
            "appToken": {"type": "apiKey", "in": "header", "name": "X-Application-Token"},
            "signature": {"type": "apiKey", "in": "header", "name": "X-Signature",
                          "description": "sha256=<hex HMAC-SHA256 of the raw body with CALLUP_PROVIDER_SECRET>"}}},
    }


async def openapi_json(request: web.Request) -> web.Response:
    """GET /openapi.json."""
    cache = request.app[keys.OPENAPI_CACHE]
    if not cache:
        cache.update(build_spec(request.app))   # routes are frozen once the app runs
    return respond(cache)


DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>API docs</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body style="margin: 0">
<nav style="font: 14px system-ui, sans-serif; padding: 8px 20px; background: #1d2330; color: #c9d1e0">
REST: <a style="color: #fff" href="/openapi.json">OpenAPI 3.1</a> &middot;
websocket protocol (<code>GET /ws</code>): <a id="asyncapi-link" style="color: #fff" href="/asyncapi.json">AsyncAPI 3.0</a>
&middot; <a style="color: #fff" href="/dashboard">operator dashboard</a></nav>
<div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true});</script>
</body></html>"""


async def docs(request: web.Request) -> web.Response:
    """GET /docs: Swagger UI served from a Python package, no CDN."""
    return web.Response(text=DOCS_PAGE, content_type="text/html")


def setup(app: web.Application) -> None:
    from openapi_ui_bundles.swagger_ui import static_path

    from backend.ops import asyncapi

    asyncapi.setup(app)
    app[keys.OPENAPI_CACHE] = {}
    app.router.add_get("/openapi.json", openapi_json)
    app.router.add_get("/docs", docs)
    app.router.add_static("/docs/static/", static_path)
