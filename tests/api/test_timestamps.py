"""One ISO 8601 timestamp form, UTC with `Z`, on every surface and in every event (SPEC §2.4, issue 12)."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from tests.conftest import TestUser, UserFactory

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def stamps(value: Any) -> list[str]:
    """Every timestamp string at any depth of a JSON value."""
    if isinstance(value, str):
        return [value] if STAMP.match(value) else []
    if isinstance(value, dict):
        return [s for item in value.values() for s in stamps(item)]
    if isinstance(value, list):
        return [s for item in value for s in stamps(item)]
    return []


def assert_z(value: Any, at_least: int = 1) -> None:
    found = stamps(value)
    assert len(found) >= at_least, value
    assert all(s.endswith("Z") for s in found), found


async def test_every_surface_and_event_writes_utc_with_z(client: TestClient, admin: TestUser,
                                                        make_user: UserFactory) -> None:
    # car sharing (/api/*)
    car = await client.post("/api/passenger-cars/", json={"number": "T001AA54", "brand": "Lada", "model": "Vesta",
                                                          "shared": True, "lat": "55.03", "lon": "82.92",
                                                          "fuel_level": "40", "tariff_per_minute": "7.5"},
                            headers=admin.headers)
    customer = await make_user(role="client", phone="+79001234567")
    resp = await client.post("/api/bookings", json={"car": (await car.json())["id"]}, headers=customer.headers)
    assert resp.status == 201
    assert_z(await resp.json())

    # CallUp (/v1)
    app = await client.post("/api/callup/apps/", json={"name": "stamps"}, headers=admin.headers)
    token = (await app.json())["token"]
    resp = await client.post("/v1/orders", json={"phone": "79001234567"}, headers={"X-Application-Token": token})
    assert resp.status in (200, 201), await resp.text()
    order = await client.get(f"/v1/orders/{(await resp.json())['data']['id']}", headers={"X-Application-Token": token})
    assert_z(await order.json(), at_least=2)

    # messenger, REST and the event frame with its payload
    other = await make_user(role="client")
    chat = await (await client.post("/chats", json={"user_id": other.id}, headers=admin.headers)).json()
    assert_z(chat, at_least=2)
    async with client.ws_connect("/ws", headers=other.headers) as ws:
        await ws.send_json({"type": "subscribe", "channel": f"chat:{chat['id']}", "id": 1})
        reply = await ws.receive_json(timeout=5)
        assert reply["type"] == "subscribed", reply
        sent = await client.post(f"/chats/{chat['id']}/messages", json={"text": "hi"}, headers=admin.headers)
        assert_z(await sent.json())
        frame = await ws.receive_json(timeout=5)
        while frame.get("type") != "event" or frame.get("event") != "message.created":
            frame = await ws.receive_json(timeout=5)
        assert frame["ts"].endswith("Z") and STAMP.match(frame["ts"])
        assert_z(frame["data"])
    listed = await client.get(f"/chats/{chat['id']}/messages", headers=admin.headers)
    assert_z(await listed.json())
