"""JSON encoding shared by HTTP responses and websocket frames (orjson; Decimal as string)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import orjson


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def dumps(value: Any) -> str:
    """Serialize to a str (aiohttp's json_response wants str)."""
    return orjson.dumps(value, default=_default, option=0).decode()


def dumpb(value: Any) -> bytes:
    """Serialize to bytes, for websocket frames sent to many sockets."""
    return orjson.dumps(value, default=_default)


def utc_iso(value: dt.datetime | None) -> str | None:
    """ISO 8601 with an explicit UTC offset (SPEC §2.4)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat()


loads = orjson.loads
