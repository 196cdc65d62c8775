"""Cross-instance delivery over Redis pub/sub, subscription bookkeeping, deferred publishing."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from backend import keys
from backend.callup.tables import apps
from backend.db import read, transaction
from backend.embedded import EmbeddedValkey, free_port
from backend.realtime.bus import CONTROL
from tests.realtime.conftest import event_of, metric, subscribe
from tests.sharing.conftest import add_car
from tests.support import eventually


async def numsub(client: TestClient, channel: str) -> int:
    """How many Redis connections (instances) are subscribed to `channel`, by its real name."""
    app = client.app
    name = app[keys.BUS].redis_channel(channel)
    [(_, count)] = await app[keys.REDIS].pubsub_numsub(name)
    return int(count)


async def test_event_published_on_a_reaches_subscribers_on_a_and_b(rt_client) -> None:
    a, b = await rt_client(), await rt_client()
    async with a.ws_connect("/ws") as on_a, b.ws_connect("/ws") as on_b:
        await subscribe(on_a, "news")
        await subscribe(on_b, "news")
        receivers = await a.app[keys.BUS].publish("news", "story", {"n": 1})
        assert receivers == 2
        for ws in (on_a, on_b):
            event = await ws.receive_json(timeout=5)
            assert event_of(event) == ("news", "story", {"n": 1})
            assert event["ts"].endswith("Z")


async def test_instance_without_local_subscriber_is_not_subscribed_in_redis(rt_client) -> None:
    a, b = await rt_client(), await rt_client()
    assert await numsub(a, "news") == 0
    async with b.ws_connect("/ws") as ws, b.ws_connect("/ws") as second:
        await subscribe(ws, "news")
        await subscribe(second, "news")
        assert await numsub(a, "news") == 1            # B only, once for its two sockets
        assert "news" not in a.app[keys.BUS].channels
        assert await a.app[keys.BUS].publish("news", "story", {}) == 1
        for socket in (ws, second):
            assert event_of(await socket.receive_json(timeout=5))[1] == "story"
        await ws.send_json({"type": "unsubscribe", "channel": "news", "id": 2})
        assert (await ws.receive_json(timeout=5))["type"] == "unsubscribed"
        assert await numsub(a, "news") == 1            # the second socket still listens
    # Both sockets gone: B leaves the Redis channel by itself.
    async def left() -> None:
        assert await numsub(a, "news") == 0

    await eventually(left)
    assert b.app[keys.HUB].local_count("news") == 0


async def test_events_arrive_in_publish_order(rt_client) -> None:
    a, b = await rt_client(), await rt_client()
    async with b.ws_connect("/ws") as ws:
        await subscribe(ws, "news")
        for n in range(50):
            await a.app[keys.BUS].publish("news", "story", {"n": n})
        received = [(await ws.receive_json(timeout=5))["data"]["n"] for _ in range(50)]
        assert received == list(range(50))


async def test_malformed_payload_does_not_end_the_listener(rt_client, make_user, caplog) -> None:
    """Regression: an exception in delivery (here a control message that is not JSON) killed the listener task."""
    a, b = await rt_client(), await rt_client()
    user = await make_user()
    channel = f"user:{user.id}"
    async with a.ws_connect("/ws", headers=user.headers) as ws:
        # Straight to Redis, past Bus.publish_control: a control message that is not JSON.
        garbage = b'not json "action":"revoke"'
        await b.app[keys.REDIS].publish(a.app[keys.BUS].redis_channel(CONTROL), garbage)
        await b.app[keys.BUS].publish(channel, "chat.created", {"id": 5})
        assert event_of(await ws.receive_json(timeout=5)) == (channel, "chat.created", {"id": 5})
    failures = [r for r in caplog.records if r.getMessage() == "event delivery failed"]
    # Every instance hears the control channel, so each logs it once, with its traceback.
    assert 1 <= len(failures) <= 2 and all(record.exc_info is not None for record in failures)


async def test_deferred_publishes_only_after_the_block_succeeds(rt_client) -> None:
    a, b = await rt_client(), await rt_client()
    bus = a.app[keys.BUS]
    async with b.ws_connect("/ws") as ws:
        await subscribe(ws, "news")
        with pytest.raises(RuntimeError):
            async with bus.deferred() as out:
                out.add("news", "rolled.back", {"n": 0})
                raise RuntimeError("transaction failed")
        async with bus.deferred() as out:
            out.add("news", "committed", {"n": 1})
            out.add("news", "committed", {"n": 2})
        assert [(await ws.receive_json(timeout=5))["data"] for _ in range(2)] == [{"n": 1}, {"n": 2}]
        await ws.send_json({"type": "ping", "id": 1})
        assert await ws.receive_json(timeout=5) == {"type": "pong", "id": 1}    # nothing else came


async def test_deferred_inside_a_transaction_publishes_only_what_committed(rt_client) -> None:
    a, b = await rt_client(), await rt_client()
    bus, db = a.app[keys.BUS], a.app[keys.DB]
    taken = uuid.uuid4()
    async with transaction(db) as conn:
        await conn.execute(insert(apps).values(name="existing", token=taken))

    async with b.ws_connect("/ws") as ws:
        await subscribe(ws, "news")

        async def first_event_and_rows_seen_then() -> tuple[dict[str, Any], list[str]]:
            """The first event, and what another connection (B's own pool) sees the moment it arrives."""
            event = await ws.receive_json(timeout=5)
            async with read(b.app[keys.DB]) as other:
                names = (await other.scalars(select(apps.c.name).order_by(apps.c.id))).all()
            return event, list(names)

        watcher = asyncio.create_task(first_event_and_rows_seen_then())
        with pytest.raises(IntegrityError):
            async with bus.deferred() as out, transaction(db) as conn:
                await conn.execute(insert(apps).values(name="rolled back", token=uuid.uuid4()))
                out.add("news", "app.created", {"name": "rolled back"})
                await conn.execute(insert(apps).values(name="duplicate", token=taken))   # unique violation
        async with bus.deferred() as out, transaction(db) as conn:
            await conn.execute(insert(apps).values(name="committed", token=uuid.uuid4()))
            out.add("news", "app.created", {"name": "committed"})
        event, names = await watcher
        # Had the failed block published, its event would have come first.
        assert event_of(event) == ("news", "app.created", {"name": "committed"})
        assert names == ["existing", "committed"]


async def test_a_deferred_block_arrives_in_order_with_contiguous_offsets(rt_client) -> None:
    """One pipeline for a whole outbox (a booking queues 4-5 events): each channel keeps the order
    of the block and its offsets step by one, also when Redis lost its scripts; an idempotent event
    of a repeated block is not sent again."""
    a, b = await rt_client(), await rt_client()
    channels = ("news:x", "news:y", "news:z")
    async with b.ws_connect("/ws") as ws:
        for number, channel in enumerate(channels):
            assert (await subscribe(ws, channel, number))["offset"] == 0
        for attempt in range(2):
            if attempt:
                await a.app[keys.REDIS].script_flush()   # as after a restart: the pipeline gets NOSCRIPT
            async with a.app[keys.BUS].deferred() as out:
                for n in range(6):
                    out.add(channels[n % 2], "story", {"n": n, "attempt": attempt})
                out.add("news:z", "once", {"attempt": attempt}, key="block-1")
        frames = [await ws.receive_json(timeout=5) for _ in range(13)]
        await a.app[keys.BUS].publish("news:z", "marker", {})
        assert event_of(await ws.receive_json(timeout=5))[1] == "marker"    # nothing more came before it
    by_channel: dict[str, list[tuple[int, Any]]] = {}
    for frame in frames:
        by_channel.setdefault(frame["channel"], []).append((frame["offset"], frame["data"]))
    assert by_channel["news:x"] == [(i + 1, {"n": n, "attempt": i // 3}) for i, n in enumerate((0, 2, 4, 0, 2, 4))]
    assert by_channel["news:y"] == [(i + 1, {"n": n, "attempt": i // 3}) for i, n in enumerate((1, 3, 5, 1, 3, 5))]
    assert by_channel["news:z"] == [(1, {"attempt": 0})]
    text = await (await a.get("/metrics")).text()
    assert (metric(text, "events_published_total"), metric(text, "events_publish_failed_total")) == (14, 0)


async def test_a_deferred_block_without_redis_drops_its_events_and_the_request_stands(
        rt_client, admin, make_user, tmp_path: Path) -> None:
    valkey = EmbeddedValkey(tmp_path / "valkey", port=free_port(), persist=False)
    client = await rt_client(redis_url=valkey.start())
    try:
        car = await add_car(client, admin)
        customer = await make_user(role="client")
        await asyncio.to_thread(valkey.stop)
        resp = await client.post("/api/bookings", json={"car": car["id"]}, headers=customer.headers)
        assert resp.status == 201, await resp.text()          # Postgres is the truth (SPEC §8.4)
        text = await (await client.get("/metrics")).text()
        assert metric(text, "events_publish_failed_total") >= 2     # every event of the block, dropped
    finally:
        valkey.stop()


async def test_publish_api(rt_client, admin, make_user) -> None:
    a, b = await rt_client(), await rt_client()
    driver = await make_user()
    body = {"channel": "news", "event": "story", "data": {"n": 1}}
    async with a.ws_connect("/ws") as ws:
        await subscribe(ws, "news")
        resp = await b.post("/api/realtime/publish", json=body, headers=admin.headers)
        assert resp.status == 200
        first = await resp.json()
        assert {**first, "epoch": None} == {"channel": "news", "event": "story", "subscribers_local": 0,
                                            "offset": 1, "epoch": None}
        assert event_of(await ws.receive_json(timeout=5)) == ("news", "story", {"n": 1})
        resp = await a.post("/api/realtime/publish", json=body, headers=admin.headers)
        assert (await resp.json())["subscribers_local"] == 1
        assert event_of(await ws.receive_json(timeout=5)) == ("news", "story", {"n": 1})

    assert (await a.post("/api/realtime/publish", json=body)).status == 401
    assert (await a.post("/api/realtime/publish", json=body, headers=driver.headers)).status == 403
    # Judged by the registry subscribe uses: unknown namespaces, and names a namespace's shape refuses.
    for channel in ("nowhere:1", "plain:1", "dashboard:1", "user:x", "user:", "news:a b"):
        resp = await a.post("/api/realtime/publish", headers=admin.headers,
                            json={"channel": channel, "event": "x", "data": {}})
        assert resp.status == 400 and "channel" in await resp.json(), channel


async def test_publish_idempotency_key_is_shared_by_instances(rt_client, admin) -> None:
    a, b = await rt_client(), await rt_client()
    async with a.ws_connect("/ws") as ws:
        await subscribe(ws, "news")
        body = {"channel": "news", "event": "story", "data": {"n": 1}, "idempotency_key": "k-1"}
        first = await a.post("/api/realtime/publish", json=body, headers=admin.headers)
        again = await b.post("/api/realtime/publish", json={**body, "data": {"n": 2}}, headers=admin.headers)
        assert first.status == again.status == 200
        answer = await first.json()
        assert await again.json() == answer
        assert answer == {"channel": "news", "event": "story", "subscribers_local": 1, "offset": 1,
                          "epoch": answer["epoch"]}
        await a.post("/api/realtime/publish", headers=admin.headers,
                     json={"channel": "news", "event": "marker", "data": {}})
        assert event_of(await ws.receive_json(timeout=5)) == ("news", "story", {"n": 1})
        assert event_of(await ws.receive_json(timeout=5))[1] == "marker"     # no second "story"
    key = a.app[keys.BUS].streams.idempotency_key("news", "story", "k-1")
    assert 0 < await a.app[keys.REDIS].ttl(key) <= 300


async def test_metrics(rt_client) -> None:
    a, b = await rt_client(), await rt_client()
    async with a.ws_connect("/ws") as ws:
        await subscribe(ws, "news")
        await b.app[keys.BUS].publish("news", "story", {})
        await ws.receive_json(timeout=5)
        text = await (await a.get("/metrics")).text()
    assert (metric(text, "ws_connections"), metric(text, "ws_subscriptions")) == (1, 1)
    assert metric(text, "events_delivered_total") == 1
    for name in ("events_published_total", "events_dropped_total", "events_publish_failed_total",
                 "ws_slow_consumer_closes_total", "bus_reconnects_total"):
        assert metric(text, name) == 0
    assert metric(await (await b.get("/metrics")).text(), "events_published_total") == 1
