"""Requests aiohttp's parser refuses answer in the path's surface style, echo nothing, carry
X-Request-ID and log one warning (issue 10 item 8, issue 12). Raw sockets against a real server run
by the same runner as run.py and gunicorn (backend.api.protocol.SurfaceAppRunner)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from backend.api.protocol import SurfaceAppRunner
from backend.app import create_app
from backend.config import Config


@pytest.fixture
async def port(config: Config) -> AsyncIterator[int]:
    runner = SurfaceAppRunner(create_app(config), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def exchange(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read until the server closes: (status, headers, body) of the last response."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    last = data[data.rfind(b"HTTP/1."):]
    head, _, body = last.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def style_of(body: Any) -> str:
    if "errors" in body and "data" in body:
        return "envelope"
    if "error" in body:
        return "mnemonic"
    return "detail"          # DRF non-field errors and the operations style share {"detail", "code"}


BIG_COOKIE = b"Cookie: " + b"c" * 10240 + b"\r\n"
CASES = [
    # (name, raw request, status, style, bytes that must not be echoed)
    ("cookie 10 KB, /api", b"GET /api/cars HTTP/1.1\r\nHost: t\r\n" + BIG_COOKIE + b"\r\n", 431, "detail", b"ccc"),
    ("cookie 10 KB, /v1", b"GET /v1/apps/me HTTP/1.1\r\nHost: t\r\n" + BIG_COOKIE + b"\r\n", 431, "envelope", b"ccc"),
    ("cookie 10 KB, /chats", b"GET /chats HTTP/1.1\r\nHost: t\r\n" + BIG_COOKIE + b"\r\n", 431, "mnemonic", b"ccc"),
    ("header 9 KB, /auth", b"GET /auth/me HTTP/1.1\r\nHost: t\r\nX-Big: " + b"h" * 9000 + b"\r\n\r\n", 431, "detail",
     b"hhh"),
    ("200 headers", b"GET /users HTTP/1.1\r\nHost: t\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(200)) + b"\r\n",
     431, "mnemonic", b"X-1"),
    ("URL 9 KB", b"GET /v1/orders/" + b"u" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414, "envelope", b"uuu"),
    ("control character", b"GET /users HTTP/1.1\r\nHost: t\r\nX-Bad: a\x01secret\r\n\r\n", 400, "mnemonic",
     b"secret"),
    ("space in a header name", b"GET /api/cars HTTP/1.1\r\nHost: t\r\nX Bad: secret\r\n\r\n", 400, "detail",
     b"secret"),
    ("CL and TE", b"POST /api/bookings HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"0\r\n\r\n", 400, "detail", b"chunked"),
    ("Content-Length shorter than the body", b"POST /v1/orders HTTP/1.1\r\nHost: t\r\nContent-Type: application/json"
     b"\r\nContent-Length: 2\r\n\r\n{}secret-rest", 400, "envelope", b"secret"),
    ("not HTTP", b"\x16\x03\x01secret\r\n\r\n", 400, "detail", b"secret"),
]


@pytest.mark.parametrize(("raw", "status", "style", "secret"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_malformed_requests_answer_in_the_surface_style(port: int, caplog: pytest.LogCaptureFixture,
                                                              raw: bytes, status: int, style: str,
                                                              secret: bytes) -> None:
    caplog.set_level(logging.DEBUG)
    got, headers, body = await exchange(port, raw)
    assert got == status, body
    assert headers["content-type"].startswith("application/json")
    assert len(headers.get("x-request-id", "")) >= 16
    assert headers["x-content-type-options"] == "nosniff" and "aiohttp" not in headers.get("server", "")
    assert secret not in body
    data = json.loads(body)
    assert style_of(data) == style, data
    # Russian, like every error message of the service.
    assert any("\u0400" <= ch <= "\u04ff" for ch in body.decode())
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
    assert not [r for r in caplog.records if r.exc_info], "no traceback for a client's mistake"


async def test_one_warning_with_the_request_id(port: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    _, headers, _ = await exchange(port, b"GET /api/cars HTTP/1.1\r\nHost: t\r\n" + BIG_COOKIE + b"\r\n")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.getMessage() == "malformed request"]
    assert len(warnings) == 1
    assert warnings[0].request_id == headers["x-request-id"]          # type: ignore[attr-defined]


async def test_a_good_request_on_the_same_runner_is_untouched(port: int) -> None:
    status, headers, body = await exchange(port, b"GET /api/cars HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert status == 200 and json.loads(body) == [] and headers["x-request-id"]
