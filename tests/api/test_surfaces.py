"""Every surface answers bad input in its own error style, never with a 500 (SPEC §2.3)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pydantic import BaseModel

from backend.api.validation import read_json

# (prefix of a probe route, the surface's style)
SURFACES = [("/api/", "drf"), ("/v1/", "envelope"), ("/auth/", "detail"), ("/chats/", "mnemonic"),
            ("/users/", "mnemonic"), ("/profile/", "drf")]


class Probe(BaseModel):
    name: str
    count: int


async def probe(request: web.Request) -> web.Response:
    data = await read_json(request, Probe)
    return web.json_response(data.model_dump())


async def boom(request: web.Request) -> web.Response:
    raise RuntimeError("secret internal detail")


def add_probes(app: web.Application) -> None:
    for prefix, _ in SURFACES:
        app.router.add_post(prefix + "zz-probe", probe)
        app.router.add_get(prefix + "zz-boom", boom)


@pytest.fixture
async def probed(make_client) -> TestClient:
    return await make_client(setup=add_probes)


def assert_style(style: str, status: int, body: Any, code: str | None = None) -> None:
    """The body has the shape of `style` and, where the style carries one, the code."""
    if style == "drf":
        assert isinstance(body, dict)
        if "detail" in body:
            assert set(body) == {"detail", "code"} and (code is None or body["code"] == code)
        else:
            assert status == 400 and body and all(isinstance(v, list) for v in body.values())
    elif style == "envelope":
        assert body["data"] is None and isinstance(body["errors"], list) and body["errors"]
        assert all("message" in e for e in body["errors"])
        assert code is None or body["errors"][0]["code"] == code
    elif style == "detail":
        assert "detail" in body and "code" in body and (code is None or body["code"] == code)
    elif style == "mnemonic":
        assert "error" in body and "message" in body and (code is None or body["error"] == code)
    else:  # pragma: no cover
        raise AssertionError(style)


@pytest.mark.parametrize(("prefix", "style"), SURFACES)
async def test_valid_probe_passes(probed: TestClient, prefix: str, style: str) -> None:
    resp = await probed.post(prefix + "zz-probe", json={"name": "x", "count": 2})
    assert resp.status == 200 and await resp.json() == {"name": "x", "count": 2}


@pytest.mark.parametrize(("prefix", "style"), SURFACES)
async def test_malformed_json(probed: TestClient, prefix: str, style: str) -> None:
    resp = await probed.post(prefix + "zz-probe", data=b'{"name": "x",',
                             headers={"Content-Type": "application/json"})
    expected = 422 if style == "detail" else 400
    assert resp.status == expected
    assert_style(style, resp.status, await resp.json(), "parse_error")


@pytest.mark.parametrize(("prefix", "style"), SURFACES)
async def test_invalid_fields(probed: TestClient, prefix: str, style: str) -> None:
    resp = await probed.post(prefix + "zz-probe", json={"name": "x", "count": "many"})
    body = await resp.json()
    assert resp.status == (422 if style == "detail" else 400)
    assert_style(style, resp.status, body)
    if style == "drf":
        assert body == {"count": ["Требуется целочисленное значение."]}
    if style == "detail":
        assert body["errors"] == [{"field": "count", "message": "Требуется целочисленное значение."}]


@pytest.mark.parametrize(("prefix", "style"), SURFACES)
async def test_json_array_instead_of_object(probed: TestClient, prefix: str, style: str) -> None:
    resp = await probed.post(prefix + "zz-probe", json=[1, 2])
    assert resp.status in (400, 422)
    assert_style(style, resp.status, await resp.json())


@pytest.mark.parametrize(("prefix", "style"), SURFACES)
async def test_wrong_content_type(probed: TestClient, prefix: str, style: str) -> None:
    resp = await probed.post(prefix + "zz-probe", data=b"name=x&count=2",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status == 415
    assert_style(style, resp.status, await resp.json(), "unsupported_media_type")


@pytest.mark.parametrize(("prefix", "style"), SURFACES)
async def test_two_mebibyte_body(probed: TestClient, prefix: str, style: str) -> None:
    payload = b'{"name": "' + b"x" * (2 << 20) + b'", "count": 1}'
    resp = await probed.post(prefix + "zz-probe", data=payload, headers={"Content-Type": "application/json"})
    assert resp.status == 413
    assert_style(style, resp.status, await resp.json(), "request_too_large")


@pytest.mark.parametrize(("prefix", "style"), SURFACES)
async def test_unknown_route(probed: TestClient, prefix: str, style: str) -> None:
    resp = await probed.get(prefix + "no-such-thing/42")
    assert resp.status == 404
    assert_style(style, resp.status, await resp.json(), "not_found")


@pytest.mark.parametrize(("prefix", "style"), SURFACES)
async def test_wrong_method(probed: TestClient, prefix: str, style: str) -> None:
    resp = await probed.delete(prefix + "zz-probe")
    assert resp.status == 405
    assert "POST" in resp.headers["Allow"]
    assert_style(style, resp.status, await resp.json(), "method_not_allowed")


@pytest.mark.parametrize(("prefix", "style"), SURFACES)
async def test_unexpected_exception_is_500_without_traceback(probed: TestClient, prefix: str, style: str) -> None:
    resp = await probed.get(prefix + "zz-boom", headers={"X-Request-ID": "req-123"})
    assert resp.status == 500
    text = await resp.text()
    assert "Traceback" not in text and "secret internal detail" not in text and "RuntimeError" not in text
    assert "req-123" in text
    assert resp.headers["X-Request-ID"] == "req-123"
    assert_style(style, resp.status, await resp.json(), "internal_error")


async def test_request_id_generated_when_missing_or_unsafe(probed: TestClient) -> None:
    resp = await probed.get("/health/live")
    assert len(resp.headers["X-Request-ID"]) == 32
    resp = await probed.get("/health/live", headers={"X-Request-ID": "bad id\twith spaces"})
    assert resp.headers["X-Request-ID"] != "bad id\twith spaces"
