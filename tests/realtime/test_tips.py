"""Stream tips (backend/realtime/tips.py): positions followed from the live stream instead of read."""

from __future__ import annotations

from backend import keys
from tests.realtime.conftest import subscribe
from tests.realtime.test_recovery import events


async def test_a_joined_channel_answers_from_its_tip_with_no_gap_and_no_duplicate(rt_client) -> None:
    a, b = await rt_client(), await rt_client()
    hub, publish = a.app[keys.HUB], b.app[keys.BUS].publish
    async with a.ws_connect("/ws") as first, a.ws_connect("/ws") as second:
        anchored = await subscribe(first, "news:tip")          # reads Redis and anchors the tip
        for n in range(3):
            await publish("news:tip", "story", {"n": n})
        assert [frame["offset"] for frame in await events(first, 3)] == [anchored["offset"] + k for k in (1, 2, 3)]
        known = hub.tips.known("news:tip")
        assert known is not None and (known.epoch, known.top) == (anchored["epoch"], anchored["offset"] + 3)
        reply = await subscribe(second, "news:tip")           # from the tip, no read
        assert (reply["epoch"], reply["offset"]) == (known.epoch, known.top)
        await publish("news:tip", "story", {"n": 3})
        for ws in (first, second):
            assert (await ws.receive_json(timeout=5))["offset"] == known.top + 1


async def test_an_event_the_instance_never_heard_drops_the_tip(rt_client) -> None:
    """Regression guard: a gap in the offsets (an event published while this instance's pub/sub was
    down) must send the next subscriber back to Redis, not hand it a top it will never catch up from."""
    a, b = await rt_client(), await rt_client()
    hub, bus = a.app[keys.HUB], b.app[keys.BUS]
    async with a.ws_connect("/ws") as first, a.ws_connect("/ws") as late:
        top = (await subscribe(first, "news:gap"))["offset"]
        await bus.publish("news:gap", "story", {})
        assert (await first.receive_json(timeout=5))["offset"] == top + 1
        meta, _ = bus.streams.keys("news:gap")
        await b.app[keys.REDIS].hincrby(meta, "o", 1)          # offset top + 2: never published here
        await bus.publish("news:gap", "story", {})
        assert (await first.receive_json(timeout=5))["offset"] == top + 3
        assert hub.tips.known("news:gap") is None
        assert (await subscribe(late, "news:gap"))["offset"] == top + 3
    assert hub.tips.known("news:gap") is None                # everyone left: the bus stopped listening


async def test_the_bus_vouches_only_for_confirmed_channels(rt_client) -> None:
    a = await rt_client()
    bus = a.app[keys.BUS]
    assert bus.session("news:unheard") is None
    async with a.ws_connect("/ws") as ws:
        await subscribe(ws, "news:heard")
        assert bus.session("news:heard") is not None
