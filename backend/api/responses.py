"""The one way a handler answers with JSON (orjson; Decimal as string, pydantic models dumped)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from backend.jsonutil import dumps


def respond(data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """A JSON response of `data`: plain values, or pydantic models (dumped in JSON mode)."""
    return web.json_response(data, status=status, headers=headers, dumps=dumps)
