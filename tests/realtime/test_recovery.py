"""Streams and recovery (SPEC §12.1, §12.2): offsets, epochs, `since`, the history API."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import aiohttp
from aiohttp import web

from backend import keys
from backend.realtime.channels import ANY_REST, Namespace
from tests.realtime.conftest import anyone, event_of, public_channels, subscribe


def with_talk(app: web.Application) -> None:
    """The public test namespaces plus `talk`, whose `typing` events are ephemeral."""
    public_channels(app)
    app[keys.CHANNELS].add(Namespace("talk", authorize=anyone, rest=ANY_REST, ephemeral=frozenset({"typing"})))


async def resubscribe(ws: aiohttp.ClientWebSocketResponse, channel: str, offset: int, epoch: str,
                      frame_id: int = 1) -> dict[str, Any]:
    await ws.send_json({"type": "subscribe", "channel": channel, "id": frame_id,
                        "since": {"offset": offset, "epoch": epoch}})
    return await ws.receive_json(timeout=5)


async def events(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[dict[str, Any]]:
    return [await ws.receive_json(timeout=5) for _ in range(count)]


async def nothing_more(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Nothing was queued for `ws`: a ping's pong is the next frame."""
    await ws.send_json({"type": "ping", "id": "last"})
    assert await ws.receive_json(timeout=5) == {"type": "pong", "id": "last"}


async def test_missed_events_are_recovered_on_another_instance(rt_client) -> None:
    a, b = await rt_client(), await rt_client()
    async with a.ws_connect("/ws") as ws:
        reply = await subscribe(ws, "news:r")
        epoch, top = reply["epoch"], reply["offset"]
        await b.app[keys.BUS].publish("news:r", "story", {"n": 0})
        seen = await ws.receive_json(timeout=5)
        assert seen["offset"] == top + 1
    for n in range(1, 51):
        await b.app[keys.BUS].publish("news:r", "story", {"n": n})
    async with b.ws_connect("/ws") as ws:
        reply = await resubscribe(ws, "news:r", seen["offset"], epoch, 9)
        assert {k: reply[k] for k in ("type", "channel", "id", "offset", "epoch", "recovered")} == \
            {"type": "subscribed", "channel": "news:r", "id": 9, "offset": top + 51, "epoch": epoch, "recovered": True}
        missed = await events(ws, 50)
        assert [frame["data"]["n"] for frame in missed] == list(range(1, 51))
        assert [frame["offset"] for frame in missed] == list(range(top + 2, top + 52))
        await a.app[keys.BUS].publish("news:r", "story", {"n": 51})
        live = await ws.receive_json(timeout=5)
        assert (live["data"], live["offset"]) == ({"n": 51}, top + 52)
        await nothing_more(ws)


async def test_wrong_epoch_or_an_offset_older_than_the_history_recovers_nothing(rt_client) -> None:
    a = await rt_client(history_size=10)
    bus = a.app[keys.BUS]
    async with a.ws_connect("/ws") as ws:
        reply = await subscribe(ws, "news:old")
        epoch = reply["epoch"]
        for n in range(30):
            await bus.publish("news:old", "story", {"n": n})
        await events(ws, 30)
    async with a.ws_connect("/ws") as ws:
        reply = await resubscribe(ws, "news:old", 25, "not-the-epoch")
        assert (reply["recovered"], reply["offset"], reply["epoch"]) == (False, 30, epoch)
        await nothing_more(ws)
    async with a.ws_connect("/ws") as ws:
        reply = await resubscribe(ws, "news:old", 5, epoch)       # 6…30 missed, the history holds 21…30
        assert reply["recovered"] is False
        await nothing_more(ws)
    async with a.ws_connect("/ws") as ws:
        reply = await resubscribe(ws, "news:old", 20, epoch)      # exactly what the history holds
        assert reply["recovered"] is True
        assert [frame["offset"] for frame in await events(ws, 10)] == list(range(21, 31))
        await nothing_more(ws)
    async with a.ws_connect("/ws") as ws:
        reply = await resubscribe(ws, "news:old", 31, epoch)      # an offset the stream never reached
        assert reply["recovered"] is False
        reply = await resubscribe(ws, "news:old", 30, epoch, 2)   # nothing missed is a full recovery
        assert reply["recovered"] is True
        await nothing_more(ws)


async def test_lost_stream_keys_make_a_new_epoch(rt_client) -> None:
    a = await rt_client()
    bus = a.app[keys.BUS]
    async with a.ws_connect("/ws") as ws:
        first = await subscribe(ws, "news:lost")
        await bus.publish("news:lost", "story", {})
        await ws.receive_json(timeout=5)
    await a.app[keys.REDIS].delete(*bus.streams.keys("news:lost"))       # as a flushed Redis would
    async with a.ws_connect("/ws") as ws:
        reply = await resubscribe(ws, "news:lost", 1, first["epoch"])
        assert reply["recovered"] is False and reply["epoch"] != first["epoch"] and reply["offset"] == 0
        await bus.publish("news:lost", "story", {})
        assert (await ws.receive_json(timeout=5))["offset"] == 1


async def test_resubscribing_a_joined_channel_replays_from_since(rt_client) -> None:
    a = await rt_client()
    async with a.ws_connect("/ws") as ws:
        reply = await subscribe(ws, "news:again")
        for n in range(5):
            await a.app[keys.BUS].publish("news:again", "story", {"n": n})
        assert [frame["offset"] for frame in await events(ws, 5)] == [1, 2, 3, 4, 5]
        again = await resubscribe(ws, "news:again", 2, reply["epoch"], 2)
        assert again["recovered"] is True
        assert [frame["offset"] for frame in await events(ws, 3)] == [3, 4, 5]
        await a.app[keys.BUS].publish("news:again", "story", {"n": 5})
        assert (await ws.receive_json(timeout=5))["offset"] == 6
        await nothing_more(ws)


async def test_ephemeral_events_have_no_offset_and_no_history(make_client) -> None:
    a = await make_client(setup=with_talk)
    bus = a.app[keys.BUS]
    async with a.ws_connect("/ws") as ws:
        reply = await subscribe(ws, "talk:1")
        await bus.publish("talk:1", "typing", {"user_id": 1})
        await bus.publish("talk:1", "said", {"text": "hi"})
        typing, said = await events(ws, 2)
        assert event_of(typing) == ("talk:1", "typing", {"user_id": 1}) and "offset" not in typing
        assert said["offset"] == 1
    async with a.ws_connect("/ws") as ws:
        reply = await resubscribe(ws, "talk:1", 0, reply["epoch"])
        assert reply["recovered"] is True
        assert event_of(await ws.receive_json(timeout=5))[1] == "said"
        await nothing_more(ws)


async def test_history_off_namespace_is_the_plain_fan_out(make_client) -> None:
    def setup(app: web.Application) -> None:
        app[keys.CHANNELS].add(Namespace("feed", authorize=anyone, stream=False))

    a = await make_client(setup=setup)
    async with a.ws_connect("/ws") as ws:
        assert await subscribe(ws, "feed") == {"type": "subscribed", "channel": "feed", "id": 1}
        published = await a.app[keys.BUS].publish_event("feed", "tick", {})
        assert (published.offset, published.epoch) == (0, "")
        frame = await ws.receive_json(timeout=5)
        assert event_of(frame) == ("feed", "tick", {}) and "offset" not in frame


async def test_a_burst_while_clients_resubscribe_leaves_no_gap_and_no_duplicate(rt_client) -> None:
    """Property (seeded random schedule): clients drop and resubscribe with `since` on random instances
    while a burst is published; each ends with every offset from its first to the top, once each."""
    rng = random.Random(20261202)
    a, b = await rt_client(history_size=1000), await rt_client(history_size=1000)
    instances, channel, total = (a, b), "news:burst", 400
    async with a.ws_connect("/ws") as ws:
        start = await subscribe(ws, channel)
    epoch = start["epoch"]

    async def client(seed: int) -> list[int]:
        own = random.Random(seed)
        got: list[int] = []
        last = start["offset"]
        while last < start["offset"] + total:
            async with own.choice(instances).ws_connect("/ws") as ws:
                reply = await resubscribe(ws, channel, last, epoch)
                assert reply["recovered"] is True, reply
                for _ in range(own.randint(1, 40)):
                    if last >= start["offset"] + total:
                        break
                    frame = await ws.receive_json(timeout=10)
                    got.append(frame["offset"])
                    last = frame["offset"]
        return got

    async def publisher() -> None:
        for n in range(total):
            await rng.choice(instances).app[keys.BUS].publish(channel, "story", {"n": n})
            if rng.random() < 0.1:
                await asyncio.sleep(0)

    *results, _ = await asyncio.gather(*(client(seed) for seed in range(8)), publisher())
    for got in results:
        assert got == list(range(start["offset"] + 1, start["offset"] + total + 1))


async def test_history_api(rt_client, make_user) -> None:
    a = await rt_client(history_size=20)
    bus = a.app[keys.BUS]
    for n in range(25):
        await bus.publish("news:h", "story", {"n": n})
    body = await (await a.get("/api/realtime/history", params={"channel": "news:h", "limit": 3})).json()
    assert (body["channel"], body["offset"], body["recovered"]) == ("news:h", 25, False)
    assert [event["offset"] for event in body["events"]] == [23, 24, 25]
    assert event_of(body["events"][0]) == ("news:h", "story", {"n": 22})
    epoch = body["epoch"]
    page = await (await a.get("/api/realtime/history",
                              params={"channel": "news:h", "since": 10, "epoch": epoch, "limit": 4})).json()
    assert page["recovered"] is True and [event["offset"] for event in page["events"]] == [11, 12, 13, 14]
    lost = await (await a.get("/api/realtime/history",
                              params={"channel": "news:h", "since": 2, "epoch": epoch})).json()
    assert lost["recovered"] is False and lost["events"] == []
    wrong = await (await a.get("/api/realtime/history",
                               params={"channel": "news:h", "since": 20, "epoch": "other"})).json()
    assert wrong["recovered"] is False and wrong["events"] == []

    # The same rights as subscribing: unknown channels 404, channels one may not join 403.
    assert (await a.get("/api/realtime/history", params={"channel": "nowhere"})).status == 404
    assert (await a.get("/api/realtime/history", params={"channel": "plain:1"})).status == 404
    assert (await a.get("/api/realtime/history", params={"channel": "dashboard"})).status == 403
    driver, operator = await make_user(), await make_user(role="operator")
    assert (await a.get("/api/realtime/history", params={"channel": "dashboard"},
                        headers=driver.headers)).status == 403
    assert (await a.get("/api/realtime/history", params={"channel": f"user:{driver.id + 1}"},
                        headers=driver.headers)).status == 403
    assert (await a.get("/api/realtime/history", params={"channel": "dashboard"},
                        headers=operator.headers)).status == 200
    assert (await a.get("/api/realtime/history", params={"channel": f"user:{driver.id}"},
                        headers=driver.headers)).status == 200
    assert (await a.get("/api/realtime/history", params={"channel": "news:h", "since": 1})).status == 400
    spec = await (await a.get("/openapi.json")).json()
    assert "/api/realtime/history" in spec["paths"]


async def test_events_older_than_history_ttl_are_not_replayed(rt_client) -> None:
    """HISTORY_TTL bounds each event's age: a quiet channel's old events expire one by one."""
    a = await rt_client(history_ttl=1.0)
    bus = a.app[keys.BUS]
    async with a.ws_connect("/ws") as ws:
        epoch = (await subscribe(ws, "news:aged"))["epoch"]
        for n in range(3):
            await bus.publish("news:aged", "story", {"n": n})
        await events(ws, 3)
    await asyncio.sleep(1.2)                       # events 1…3 are now older than HISTORY_TTL
    await bus.publish("news:aged", "story", {"n": 3})
    async with a.ws_connect("/ws") as ws:
        reply = await resubscribe(ws, "news:aged", 0, epoch)       # 1…3 are gone: not a recovery
        assert (reply["recovered"], reply["offset"]) == (False, 4)
        await nothing_more(ws)
    async with a.ws_connect("/ws") as ws:
        reply = await resubscribe(ws, "news:aged", 3, epoch)       # only the young event was missed
        assert reply["recovered"] is True
        assert [frame["data"]["n"] for frame in await events(ws, 1)] == [3]
        await nothing_more(ws)
    history = await a.get("/api/realtime/history", params={"channel": "news:aged"})
    assert history.status == 200
    assert [event["offset"] for event in (await history.json())["events"]] == [4]
