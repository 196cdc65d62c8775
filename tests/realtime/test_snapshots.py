"""Shared snapshot reads (backend/realtime/snapshots.py): shared only with those who joined before."""

from __future__ import annotations

import asyncio

import pytest

from backend.realtime.snapshots import Snapshots


async def settle() -> None:
    """Let every ready task run (no timer involved: these tasks wait on events only)."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_subscribers_who_joined_before_a_read_share_it_later_ones_do_not() -> None:
    snapshots = Snapshots()
    reads: list[asyncio.Event] = []

    async def load() -> int:
        gate = asyncio.Event()
        reads.append(gate)
        number = len(reads)
        await gate.wait()
        return number

    early = [snapshots.ticket() for _ in range(3)]
    first = [asyncio.ensure_future(snapshots.get("cars", ticket, load)) for ticket in early]
    await asyncio.sleep(0)                                   # let the first read start
    late_ticket = snapshots.ticket()                         # joined after that read started
    late = asyncio.ensure_future(snapshots.get("cars", late_ticket, load))
    await settle()
    assert len(reads) == 2                                   # the late one could not share the first read
    reads[0].set()
    reads[1].set()
    assert await asyncio.gather(*first) == [1, 1, 1]
    assert await late == 2
    # Nothing finished is kept: the next subscriber reads afresh.
    again = asyncio.ensure_future(snapshots.get("cars", snapshots.ticket(), load))
    await settle()
    reads[2].set()
    assert await again == 3


async def test_a_subscriber_that_leaves_does_not_cancel_the_shared_read_and_failures_are_not_kept() -> None:
    snapshots = Snapshots()
    gate = asyncio.Event()
    calls = 0

    async def load() -> str:
        nonlocal calls
        calls += 1
        await gate.wait()
        if calls == 1:
            raise RuntimeError("database hiccup")
        return "fresh"

    tickets = [snapshots.ticket(), snapshots.ticket()]
    leaving = asyncio.ensure_future(snapshots.get("cars", tickets[0], load))
    staying = asyncio.ensure_future(snapshots.get("cars", tickets[1], load))
    await asyncio.sleep(0)
    leaving.cancel()
    gate.set()
    with pytest.raises(RuntimeError):
        await staying                                        # the read went on and its error reached it
    assert await snapshots.get("cars", snapshots.ticket(), load) == "fresh"
    assert calls == 2


async def test_a_storm_of_cars_subscriptions_gets_the_same_snapshot(rt_client) -> None:
    """Over real sockets: concurrent subscribers all receive the snapshot their reply promises."""
    client = await rt_client()
    sockets = [await client.ws_connect("/ws") for _ in range(20)]
    try:
        await asyncio.gather(*(ws.send_json({"type": "subscribe", "channel": "news", "id": n})
                               for n, ws in enumerate(sockets)))
        replies = await asyncio.gather(*(ws.receive_json(timeout=5) for ws in sockets))
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets))
    assert all(reply["type"] == "subscribed" and reply["snapshot"] == [{"id": 1}, {"id": 2}] for reply in replies)
