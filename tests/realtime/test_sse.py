"""GET /sse (SPEC §12.3): events with ids, Last-Event-ID recovery, heartbeats, rights."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from backend import keys
from tests.support import eventually


async def next_block(resp: aiohttp.ClientResponse, wait: float = 5.0) -> list[str]:
    """The lines of the next SSE block (up to a blank line)."""
    lines: list[str] = []
    async with asyncio.timeout(wait):
        while True:
            raw = await resp.content.readline()
            assert raw, "the stream ended"
            line = raw.decode().rstrip("\n")
            if line == "":
                if lines:
                    return lines
                continue
            lines.append(line)


def event_of(block: list[str]) -> tuple[str, str, dict[str, Any]]:
    """(id, event name, data) of an event block."""
    fields = dict(line.split(": ", 1) for line in block)
    return fields["id"], fields["event"], json.loads(fields["data"])


async def test_sse_streams_events_and_recovers_from_last_event_id(rt_client) -> None:
    a, b = await rt_client(), await rt_client()
    bus = b.app[keys.BUS]
    async with a.get("/sse", params={"channel": "news:s"}) as resp:
        assert resp.status == 200 and resp.content_type == "text/event-stream"
        assert await next_block(resp) == [": connected"]      # sent once the channel is joined
        await bus.publish("news:s", "story", {"n": 1})
        last_id, name, frame = event_of(await next_block(resp))
        assert name == "story" and frame["data"] == {"n": 1} and frame["type"] == "event"
        epoch, offset = last_id.rsplit(":", 1)
        assert int(offset) == frame["offset"] == 1
    for n in (2, 3):
        await bus.publish("news:s", "story", {"n": n})
    async with b.get("/sse", params={"channel": "news:s"}, headers={"Last-Event-ID": last_id}) as resp:
        assert await next_block(resp) == [": connected"]
        recovered = [event_of(await next_block(resp)) for _ in range(2)]
        assert [(ident, data["data"]["n"]) for ident, _, data in recovered] == [(f"{epoch}:2", 2), (f"{epoch}:3", 3)]
        await bus.publish("news:s", "story", {"n": 4})
        assert event_of(await next_block(resp))[0] == f"{epoch}:4"
    async with a.get("/sse", params={"channel": "news:s"}, headers={"Last-Event-ID": "gone:1"}) as resp:
        assert await next_block(resp) == [": connected"]
        assert await next_block(resp) == [": recovered false"]
        await bus.publish("news:s", "story", {"n": 5})
        assert event_of(await next_block(resp))[0] == f"{epoch}:5"


async def test_sse_heartbeat_and_leaving(rt_client) -> None:
    a = await rt_client(ws_heartbeat=0.2)
    async with a.get("/sse", params={"channel": "plain"}) as resp:
        assert await next_block(resp) == [": connected"]
        assert await next_block(resp) == [": heartbeat"]
    await eventually(lambda: a.app[keys.HUB].local_count("plain") == 0)


async def test_sse_rights_are_those_of_subscribing(rt_client, make_user) -> None:
    a = await rt_client()
    driver, operator = await make_user(), await make_user(role="operator")
    assert (await a.get("/sse", params={"channel": "dashboard"})).status == 403
    assert (await a.get("/sse", params={"channel": "dashboard"}, headers=driver.headers)).status == 403
    assert (await a.get("/sse", params={"channel": "nowhere"})).status == 404
    assert (await a.get("/sse")).status == 400
    assert (await a.get("/sse", params={"channel": "news", "token": driver.token})).status == 401
    async with a.get("/sse", params={"channel": "dashboard"}, headers=operator.headers) as resp:
        assert resp.status == 200
        assert await next_block(resp) == [": connected"]
