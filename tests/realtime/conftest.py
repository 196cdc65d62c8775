"""Realtime fixtures: app instances with a public test namespace, websocket helpers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from backend import keys
from backend.realtime.channels import ANY_REST, Namespace


async def anyone(db: Any, principal: Any, rest: str) -> bool:
    return True


async def headlines(db: Any, rest: str) -> list[dict[str, Any]]:
    return [{"id": 1}, {"id": 2}]


def public_channels(app: web.Application) -> None:
    """Public test namespaces, `news` with a snapshot and `plain` without (the app's own `cars` is
    tested in tests/sharing)."""
    app[keys.CHANNELS].add(Namespace("news", authorize=anyone, snapshot=headlines, rest=ANY_REST))
    app[keys.CHANNELS].add(Namespace("plain", authorize=anyone))


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


def metric(text: str, name: str) -> float:
    """The value of an unlabelled sample in /metrics text (KeyError when it is not exported)."""
    samples = {sample.name: sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples if not sample.labels}
    return samples[name]


async def expect_close(ws: aiohttp.ClientWebSocketResponse, code: int) -> None:
    """The next non-event frame is a close with `code`."""
    while (message := await ws.receive(timeout=5)).type is WSMsgType.TEXT:
        pass
    assert message.type is WSMsgType.CLOSE and message.data == code, message


async def next_event(ws: aiohttp.ClientWebSocketResponse, channel: str, event: str,
                     wait: float = 5.0) -> dict[str, Any]:
    """The data of the next `event` on `channel`; other frames are skipped; bounded by `wait`."""
    async with asyncio.timeout(wait):
        while True:
            frame = await ws.receive_json()
            if frame.get("type") == "event" and (frame["channel"], frame["event"]) == (channel, event):
                return frame["data"]
