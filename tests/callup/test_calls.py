"""Call providers (SPEC §6.4): the simulated one, the HTTP one against a real local server, and the
order.status events they cause (SPEC §6.5) on another instance."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.callup.conftest import (
    TestApp,
    create_order,
    order_row,
    signed_event,
    status_events,
    statuses,
    wait_for_status,
)
from tests.realtime.conftest import subscribe
from tests.support import eventually


async def test_simulated_call_reaches_an_app_socket_on_another_instance(two_apps, app_a: TestApp) -> None:
    a, b = two_apps
    async with b.ws_connect("/ws", headers=app_a.headers) as ws:
        assert (await subscribe(ws, f"callup:app:{app_a.id}"))["type"] == "subscribed"
        order = await create_order(a, app_a, "79001234567", query="?fields=code.value")
        events = [data for _, data in await status_events(ws, 3, order["id"])]
    assert [e["status"] for e in events] == ["created", "calling", "called"]
    for event in events:
        assert set(event) == {"id", "status", "updated_at"}           # never the code
        assert order["code"]["value"] not in json.dumps(event).replace(order["id"], "")
    assert events[0]["updated_at"] <= events[1]["updated_at"] <= events[2]["updated_at"]
    assert await statuses(a, order["id"]) == ["created", "calling", "called"]
    row = await order_row(a, order["id"])
    assert row["provider_call_id"].startswith("sim-")


async def test_simulated_phone_ending_0000_fails(client: TestClient, app_a: TestApp) -> None:
    order = await create_order(client, app_a, "79001230000")
    await wait_for_status(client, order["id"], "failed")
    assert await statuses(client, order["id"]) == ["created", "calling", "failed"]


async def test_the_request_does_not_wait_for_the_call(make_client, app_a: TestApp) -> None:
    client = await make_client(callup_sim_delay=30)
    order = await create_order(client, app_a)
    await wait_for_status(client, order["id"], "calling")           # placed, its outcome 30 s away
    assert await statuses(client, order["id"]) == ["created", "calling"]


class FakeProvider:
    """A tiny call provider on 127.0.0.1 that records what it is asked to dial."""

    def __init__(self, status: int = 200, answer: Any = None) -> None:
        self.requests: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.status, self.answer = status, answer if answer is not None else {"call_id": "prov-42"}

    async def handle(self, request: web.Request) -> web.Response:
        await self.requests.put({"body": await request.json(), "content_type": request.content_type})
        return web.json_response(self.answer, status=self.status)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/calls", self.handle)
        return app


async def http_client(make_client, aiohttp_server, provider: FakeProvider, **overrides: Any) -> TestClient:
    server = await aiohttp_server(provider.app(), host="127.0.0.1")
    return await make_client(callup_provider="http", callup_provider_url=str(server.make_url("/calls")), **overrides)


async def test_http_provider_posts_the_call_then_the_callback_completes_it(make_client, aiohttp_server,
                                                                             app_a: TestApp) -> None:
    provider = FakeProvider()
    client = await http_client(make_client, aiohttp_server, provider)
    order = await create_order(client, app_a, "79001234567", query="?fields=code.value")
    asked = await asyncio.wait_for(provider.requests.get(), 5)
    assert asked["content_type"] == "application/json"
    assert asked["body"] == {"order_id": order["id"], "phone": "79001234567",
                             "caller": order["cid"]["prefix"] + order["code"]["value"]}
    await wait_for_status(client, order["id"], "calling")
    async def call_id_stored() -> None:                              # the id is stored right after the POST
        assert (await order_row(client, order["id"]))["provider_call_id"] == "prov-42"

    await eventually(call_id_stored)
    resp = await signed_event(client, {"order_id": order["id"], "status": "called", "reason": "answered"})
    assert await resp.json() == {"data": {"applied": True, "status": "called"}, "errors": None}
    assert await statuses(client, order["id"]) == ["created", "calling", "called"]


async def test_http_provider_refusal_fails_the_order(make_client, aiohttp_server, app_a: TestApp) -> None:
    provider = FakeProvider(status=503, answer={"error": "busy"})
    client = await http_client(make_client, aiohttp_server, provider)
    order = await create_order(client, app_a)
    await wait_for_status(client, order["id"], "failed")
    assert await statuses(client, order["id"]) == ["created", "calling", "failed"]


async def test_unreachable_http_provider_fails_the_order(make_client, aiohttp_server, app_a: TestApp) -> None:
    server = await aiohttp_server(FakeProvider().app(), host="127.0.0.1")
    url = str(server.make_url("/calls"))
    await server.close()                                   # nothing listens there any more
    client = await make_client(callup_provider="http", callup_provider_url=url)
    order = await create_order(client, app_a)
    await wait_for_status(client, order["id"], "failed")


async def test_stuck_call_fails_after_the_call_timeout(make_client, aiohttp_server, app_a: TestApp) -> None:
    """The provider accepts the call but never calls back: the sweeper fails it (SPEC §6.4)."""
    provider = FakeProvider()
    client = await http_client(make_client, aiohttp_server, provider, callup_call_timeout=0.3, sweep_interval=0.05)
    order = await create_order(client, app_a)
    await wait_for_status(client, order["id"], "failed")
    assert await statuses(client, order["id"]) == ["created", "calling", "failed"]
