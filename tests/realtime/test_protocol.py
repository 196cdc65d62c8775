"""The /ws frames and channel rules of SPEC §8.1–§8.3 and §11.25."""

from __future__ import annotations

import aiohttp
import pytest

from backend import keys
from tests.realtime.conftest import subscribe
from tests.support import eventually


async def test_anonymous_may_subscribe_public_channel_with_snapshot(rt_client) -> None:
    client = await rt_client()
    async with client.ws_connect("/ws") as ws:
        reply = await subscribe(ws, "news", 7)
        # A stream channel's reply also says where its stream stands (SPEC §12.1).
        assert reply == {"type": "subscribed", "channel": "news", "id": 7, "snapshot": [{"id": 1}, {"id": 2}],
                         "offset": 0, "epoch": reply["epoch"]}
        assert isinstance(reply["epoch"], str) and reply["epoch"]
        reply = await subscribe(ws, "plain", 8)
        assert reply == {"type": "subscribed", "channel": "plain", "id": 8, "offset": 0, "epoch": reply["epoch"]}


async def test_anonymous_may_not_subscribe_dashboard_or_user(rt_client) -> None:
    client = await rt_client()
    async with client.ws_connect("/ws") as ws:
        for channel in ("dashboard", "user:1"):
            reply = await subscribe(ws, channel, 3)
            assert reply["type"] == "error" and reply["code"] == "forbidden" and reply["id"] == 3


async def test_operator_may_subscribe_dashboard_driver_may_not(rt_client, make_user) -> None:
    client = await rt_client()
    operator, driver = await make_user(role="operator"), await make_user(role="driver")
    async with client.ws_connect("/ws", headers=operator.headers) as ws:
        assert (await subscribe(ws, "dashboard"))["type"] == "subscribed"
    async with client.ws_connect("/ws", headers=driver.headers) as ws:
        assert (await subscribe(ws, "dashboard"))["code"] == "forbidden"
        assert (await subscribe(ws, f"user:{operator.id}"))["code"] == "forbidden"


@pytest.mark.parametrize("param", ["token", "access_token"])
async def test_token_in_query_string_is_refused(rt_client, make_user, param: str) -> None:
    client = await rt_client()
    user = await make_user()
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect(f"/ws?{param}={user.token}")
    assert info.value.status == 401


async def test_bad_bearer_header_is_refused_before_upgrade(rt_client) -> None:
    client = await rt_client()
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect("/ws", headers={"Authorization": "Bearer not-a-jwt"})
    assert info.value.status == 401


async def test_bad_frames_get_error_frames_and_the_socket_stays_usable(rt_client) -> None:
    client = await rt_client()
    async with client.ws_connect("/ws") as ws:
        await ws.send_str("{not json")
        assert (await ws.receive_json(timeout=5))["code"] == "bad_json"
        await ws.send_json({"type": "teleport", "id": 5})
        reply = await ws.receive_json(timeout=5)
        assert (reply["code"], reply["id"]) == ("unknown_type", 5)
        await ws.send_json([1, 2, 3])
        assert (await ws.receive_json(timeout=5))["code"] == "invalid_frame"
        await ws.send_json({"type": "subscribe", "id": 6})
        assert (await ws.receive_json(timeout=5))["code"] == "invalid_frame"
        assert (await subscribe(ws, "nowhere:1", 9))["code"] == "unknown_channel"
        await ws.send_bytes(b"\x00binary")
        assert (await ws.receive_json(timeout=5))["code"] == "invalid_frame"
        await ws.send_json({"type": "ping", "id": 10})
        assert await ws.receive_json(timeout=5) == {"type": "pong", "id": 10}


async def test_unsubscribe_is_acknowledged(rt_client) -> None:
    client = await rt_client()
    async with client.ws_connect("/ws") as ws:
        await subscribe(ws, "news")
        await ws.send_json({"type": "unsubscribe", "channel": "news", "id": 2})
        assert await ws.receive_json(timeout=5) == {"type": "unsubscribed", "channel": "news", "id": 2}


def ping_of(size: int) -> str:
    """A ping frame of exactly `size` bytes of UTF-8, padded with a two-byte character."""
    head, tail = '{"type":"ping","id":1,"pad":"', '"}'
    room = size - len(head) - len(tail)
    text = head + "я" * (room // 2) + "x" * (room % 2) + tail
    assert len(text.encode()) == size
    return text


async def test_frame_of_exactly_64_kib_is_accepted(rt_client) -> None:
    """The limit counts bytes, not characters, and 65,536 of them are still allowed (SPEC §8.4)."""
    client = await rt_client()
    async with client.ws_connect("/ws") as ws:
        await ws.send_str(ping_of(64 * 1024))
        assert await ws.receive_json(timeout=5) == {"type": "pong", "id": 1}


@pytest.mark.parametrize("size", [64 * 1024 + 1, 65 * 1024])
async def test_frame_over_64_kib_closes_with_1009(rt_client, size: int) -> None:
    client = await rt_client()
    async with client.ws_connect("/ws") as ws:
        await ws.send_str(ping_of(size))
        message = await ws.receive(timeout=5)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ws.close_code == 1009


async def test_rate_limit(rt_client) -> None:
    client = await rt_client(ws_rate=5)
    async with client.ws_connect("/ws") as ws:
        for i in range(8):
            await ws.send_json({"type": "ping", "id": i})
        replies = [await ws.receive_json(timeout=5) for _ in range(8)]
        assert [r["type"] for r in replies[:5]] == ["pong"] * 5
        assert {r["code"] for r in replies[5:]} == {"rate_limited"}
        assert [r["id"] for r in replies] == list(range(8))       # each refusal names its frame


async def test_at_most_100_subscriptions(rt_client) -> None:
    client = await rt_client(ws_rate=1000)
    async with client.ws_connect("/ws") as ws:
        for i in range(100):
            assert (await subscribe(ws, f"news:{i}", i))["type"] == "subscribed"
        assert (await subscribe(ws, "news:100", 100))["code"] == "too_many_subscriptions"


async def test_own_user_channel_does_not_count_toward_the_100(rt_client, make_user) -> None:
    client = await rt_client(ws_rate=1000)
    user = await make_user()
    own = f"user:{user.id}"
    async with client.ws_connect("/ws", headers=user.headers) as ws:
        for i in range(100):
            assert (await subscribe(ws, f"news:{i}", i))["type"] == "subscribed"
        assert (await subscribe(ws, "news:100", 100))["code"] == "too_many_subscriptions"
        assert (await subscribe(ws, own, 101))["type"] == "subscribed"     # already joined: no new slot
        await client.app[keys.BUS].publish(own, "chat.created", {"id": 5})
        event = await ws.receive_json(timeout=5)
        assert (event["channel"], event["data"]) == (own, {"id": 5})
        await ws.send_json({"type": "unsubscribe", "channel": "news:0", "id": 102})
        assert (await ws.receive_json(timeout=5))["type"] == "unsubscribed"
        assert (await subscribe(ws, "news:100", 103))["type"] == "subscribed"


async def test_auth_frame_authenticates_and_joins_user_channel(rt_client, make_user, admin) -> None:
    client = await rt_client()
    user = await make_user()
    async with client.ws_connect("/ws") as ws:
        await ws.send_json({"type": "auth", "token": user.token, "id": 1})
        assert await ws.receive_json(timeout=5) == {"type": "authenticated", "user_id": user.id, "id": 1}
        resp = await client.post("/api/realtime/publish", headers=admin.headers,
                                 json={"channel": f"user:{user.id}", "event": "hello", "data": {"n": 1}})
        assert resp.status == 200
        event = await ws.receive_json(timeout=5)
        assert (event["type"], event["channel"], event["event"], event["data"]) == \
            ("event", f"user:{user.id}", "hello", {"n": 1})


async def test_bad_auth_frame_closes_with_4001(rt_client) -> None:
    client = await rt_client()
    async with client.ws_connect("/ws") as ws:
        await ws.send_json({"type": "auth", "token": "garbage", "id": 1})
        reply = await ws.receive_json(timeout=5)
        assert (reply["type"], reply["code"]) == ("error", "unauthorized")
        message = await ws.receive(timeout=5)
        assert message.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 4001


async def test_dead_peer_is_dropped_by_the_heartbeat(rt_client) -> None:
    client = await rt_client(ws_heartbeat=0.1)
    hub = client.app[keys.HUB]
    async with client.ws_connect("/ws", autoping=False) as ws:     # a peer that never answers pings
        await subscribe(ws, "news")
        while (message := await ws.receive(timeout=5)).type is aiohttp.WSMsgType.PING:
            pass
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    await eventually(lambda: not hub.connections)
    assert not hub.connections and hub.local_count("news") == 0
