"""JSON encoding shared by HTTP responses and websocket frames (orjson; Decimal as string).

Timestamps: one ISO 8601 form on every surface and in every event, UTC written with `Z`
(`2026-12-02T08:45:51.123456Z`; SPEC §2.4 asks for a timezone and is silent on its spelling). It is
the form pydantic already gave `/api/*`, RFC 3339's and JavaScript's `toISOString()`; orjson writes
datetimes that way with OPT_UTC_Z (naive values are taken as UTC), and `utc_iso` for the few places
that build the string themselves.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import orjson

_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


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
    return orjson.dumps(value, default=_default, option=_OPTIONS).decode()


def dumpb(value: Any) -> bytes:
    """Serialize to bytes, for websocket frames sent to many sockets."""
    return orjson.dumps(value, default=_default, option=_OPTIONS)


def utc_iso(value: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC ending in `Z`, the one timestamp form of every surface (SPEC §2.4)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


loads = orjson.loads
