"""/openapi.json (OpenAPI 3.1 from the pydantic models of every route) and an offline /docs page."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from backend import keys
from backend.api.responses import respond
from backend.api.routing import Endpoint, endpoints
from backend.api.surfaces import renderer_for, surface_name
from backend.errors import ApiError

_PATH_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")
REF = "#/components/schemas/{model}"

_STRINGS = {"type": "array", "items": {"type": "string"}}
# The error bodies of SPEC §2.3, one per surface (backend.api.surfaces renders them).
ERROR_SCHEMAS: dict[str, dict[str, Any]] = {
    "DrfError": {"type": "object", "required": ["detail", "code"], "description": "DRF style (/api/*, /profile/*, "
                 "/sign-in)", "properties": {"detail": {"type": "string"}, "code": {"type": "string"}}},
    "DrfFieldErrors": {"type": "object", "minProperties": 1, "additionalProperties": _STRINGS,
                       "description": "DRF validation: field (or non_field_errors) -> messages"},
    "EnvelopeError": {"type": "object", "required": ["data", "errors"], "description": "CallUp envelope (/v1/*)",
                      "properties": {"data": {"type": "null"}, "errors": {"type": "array", "minItems": 1, "items": {
                          "type": "object", "required": ["message", "code"], "properties": {
                              "message": {"type": "string"}, "code": {"type": "string"},
                              "field": {"type": "string"}}}}}},
    "DetailError": {"type": "object", "required": ["detail", "code"],
                    "description": "Detail style (/auth/*, operations paths); 422 lists the fields",
                    "properties": {"detail": {"type": "string"}, "code": {"type": "string"},
                                   "errors": {"type": "array", "items": {
                                       "type": "object", "required": ["field", "message"], "properties": {
                                           "field": {"type": "string"}, "message": {"type": "string"}}}}}},
    "MnemonicError": {"type": "object", "required": ["error", "message"], "description": "Messenger style",
                      "properties": {"error": {"type": "string"}, "message": {"type": "string"},
                                     "fields": {"type": "object", "additionalProperties": _STRINGS}}},
}
_SURFACE_ERROR = {"drf": "DrfError", "envelope": "EnvelopeError", "detail": "DetailError",
                  "token_auth": "DetailError", "mnemonic": "MnemonicError"}

DESCRIPTIONS = {
    200: "OK", 201: "Created", 204: "No content", 304: "Not modified (If-None-Match)",
    400: "Invalid input (field errors, malformed JSON, bad query)", 401: "No, bad or expired credentials",
    403: "Not allowed (rights, app token, signature, a foreign Origin on a cookie surface)",
    404: "Not found", 409: "Conflicts with the current state", 410: "Gone (expired)",
    413: "Body too large", 415: "Unsupported content type", 422: "Invalid credentials or body",
    423: "Locked", 429: "Rate limited (Retry-After)", 503: "Database or Redis unavailable (Retry-After)",
}
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# Two templates of one shape: /users/{id} (digits only, matched first) and /users/{name} (anything
# else). OpenAPI treats same-shaped templates as one path, so the parameters say which is which.
PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "/users/{id}": {"description": "A user id (digits only): `/users/{id}` is matched before `/users/{name}`."},
    "/users/{name}": {"description": "A username fragment that is not all digits (digits name `/users/{id}`); "
                                     "`search` is `/users/search`.",
                      "schema": {"type": "string", "minLength": 1, "pattern": "^(?!search$)[^/]*[^/0-9][^/]*$"}},
}


def _schema(model: type[BaseModel], components: dict[str, Any], mode: str) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]
    for name, definition in schema.pop("$defs", {}).items():
        components.setdefault(name, definition)
    name = model.__name__ if mode == "validation" else f"{model.__name__}Out"
    components.setdefault(name, schema)
    return {"$ref": REF.format(model=name)}


def _error_statuses(endpoint: Endpoint, has_path_params: bool) -> set[int]:
    """What the route answers besides success, derived from what the router and middlewares do."""
    statuses = {401, 503}       # a bad Authorization header is refused everywhere; Redis or PostgreSQL lost
    if endpoint.auth.who in ("app", "signature") or endpoint.auth.any_of:
        statuses.add(403)
    if endpoint.method in UNSAFE:
        # A cookie-surface or cookie-authenticated write from a foreign Origin (403), or whose body a
        # session sent as a form (415) — SPEC §2.4.
        statuses |= {403, 415}
    if endpoint.body is not None:
        statuses |= {400, 413, 415}
    if endpoint.query is not None:
        statuses.add(400)
    if has_path_params:
        statuses.add(404)
    return statuses | {status for status in endpoint.responses if status >= 300}


def _error_body(path: str, status: int) -> dict[str, Any]:
    """The error body of `path`'s surface; a DRF 400 is either {detail, code} or field errors."""
    name = _SURFACE_ERROR[surface_name(path)]
    schema = {"$ref": REF.format(model=name)}
    if name == "DrfError" and status == 400:
        schema = {"anyOf": [schema, {"$ref": REF.format(model="DrfFieldErrors")}]}
    return {"application/json": {"schema": schema}}


def _parameters(endpoint: Endpoint, path: str) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    for name in _PATH_PARAM.findall(endpoint.path):
        param = {"name": name, "in": "path", "required": True,
                 "schema": {"type": "integer", "minimum": 0} if name == "id" else {"type": "string"}}
        params.append(param | PATH_PARAMETERS.get(path, {}))
    if endpoint.query is not None:
        query_schema = endpoint.query.model_json_schema()
        required = set(query_schema.get("required", []))
        for name, prop in query_schema.get("properties", {}).items():
            params.append({"name": name, "in": "query", "required": name in required, "schema": prop})
    return params


def _operation(endpoint: Endpoint, path: str, components: dict[str, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": endpoint.summary, "tags": [endpoint.tag],
                                 "operationId": f"{endpoint.method.lower()}_{endpoint.path}"}
    params = _parameters(endpoint, path)
    if params:
        operation["parameters"] = params
    if endpoint.body is not None:
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": _schema(endpoint.body, components, "validation")}}}
    responses: dict[str, Any] = {}
    for status in sorted({endpoint.status, *(s for s in endpoint.responses if s < 300)}):
        success: dict[str, Any] = {"description": DESCRIPTIONS.get(status, "OK")}
        if endpoint.response is not None and status != 204:
            success["content"] = {"application/json": {"schema": _schema(endpoint.response, components,
                                                                          "serialization")}}
        responses[str(status)] = success
    renderer = renderer_for(endpoint.path)
    for status in sorted(_error_statuses(endpoint, bool(_PATH_PARAM.search(endpoint.path)))):
        # The surface decides the status on the wire too: /auth/* answers its 400s as 422 (seed 003).
        wire, _ = renderer(ApiError(status, "x", "x"))
        responses[str(wire)] = {"description": DESCRIPTIONS.get(wire, "Error")}
        if wire != 304:
            responses[str(wire)]["content"] = _error_body(endpoint.path, wire)
    operation["responses"] = responses
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
        paths.setdefault(path, {})[endpoint.method.lower()] = _operation(endpoint, path, components)
    components.update(ERROR_SCHEMAS)
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
