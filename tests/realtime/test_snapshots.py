"""Shared snapshot reads (backend/realtime/snapshots.py): shared only with those who joined before."""

from __future__ import annotations

import asyncio

import pytest

from backend.realtime.snapshots import Snapshots


async def settle() -> None:
    """Let every ready task run (no timer involved: these tasks wait on events only)."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_one_read_at_a_time_shared_by_everyone_who_joined_before_it_started() -> None:
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
    await settle()
    late_tickets = [snapshots.ticket() for _ in range(4)]    # joined after that read started
    late = [asyncio.ensure_future(snapshots.get("cars", ticket, load)) for ticket in late_tickets]
    await settle()
    assert len(reads) == 1                                   # the late ones wait: one read at a time
    reads[0].set()
    assert await asyncio.gather(*first) == [1, 1, 1]
    await settle()
    assert len(reads) == 2                                   # the following read serves all four
    reads[1].set()
    assert await asyncio.gather(*late) == [2, 2, 2, 2]
    # Nothing finished is kept: the next subscriber reads afresh.
    again = asyncio.ensure_future(snapshots.get("cars", snapshots.ticket(), load))
    await settle()
    reads[2].set()
    assert await again == 3 and len(reads) == 3


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
