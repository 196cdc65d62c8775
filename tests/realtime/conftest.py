"""Realtime fixtures: app instances with a public test namespace, websocket helpers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from backend import keys
from backend.realtime.channels import Namespace


async def anyone(db: Any, principal: Any, rest: str) -> bool:
    return True


async def two_cars(db: Any, rest: str) -> list[dict[str, Any]]:
    return [{"id": 1}, {"id": 2}]


def public_channels(app: web.Application) -> None:
    """A public namespace with a snapshot, as the sharing domain's `cars` will be."""
    app[keys.CHANNELS].add(Namespace("cars", authorize=anyone, snapshot=two_cars))
    app[keys.CHANNELS].add(Namespace("news", authorize=anyone))


@pytest.fixture
def rt_client(make_client: Callable[..., Awaitable[TestClient]]) -> Callable[..., Awaitable[TestClient]]:
    async def start(**overrides: Any) -> TestClient:
        return await make_client(setup=public_channels, **overrides)
    return start


async def subscribe(ws: Any, channel: str, frame_id: int = 1) -> dict[str, Any]:
    await ws.send_json({"type": "subscribe", "channel": channel, "id": frame_id})
    return await ws.receive_json(timeout=5)


def event_of(frame: dict[str, Any]) -> tuple[str, str, Any]:
    """(channel, event, data) of an event frame; fails on anything else."""
    assert frame["type"] == "event", frame
    return frame["channel"], frame["event"], frame["data"]
