"""Who may listen to `callup:app:{id}` (SPEC §8.3) and the operators' copy on `dashboard` (SPEC §6.5)."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.callup.conftest import AppFactory, TestApp, create_order, status_events
from tests.realtime.conftest import subscribe


async def test_only_that_app_or_an_app_manager_may_subscribe(client: TestClient, app_a: TestApp,
                                                             make_app: AppFactory, make_user) -> None:
    other = await make_app("other")
    channel = f"callup:app:{app_a.id}"
    async with client.ws_connect("/ws", headers=app_a.headers) as ws:
        assert (await subscribe(ws, channel))["type"] == "subscribed"
    async with client.ws_connect("/ws", headers=other.headers) as ws:
        assert (await subscribe(ws, channel))["code"] == "forbidden"
    driver, admin = await make_user(role="driver"), await make_user(role="admin")
    async with client.ws_connect("/ws", headers=driver.headers) as ws:
        assert (await subscribe(ws, channel))["code"] == "forbidden"
    async with client.ws_connect("/ws", headers=admin.headers) as ws:
        assert (await subscribe(ws, channel))["type"] == "subscribed"
    async with client.ws_connect("/ws") as ws:
        assert (await subscribe(ws, channel))["code"] == "forbidden"
        for name in ("callup", "callup:app", f"callup:app:{app_a.id}x", f"callup:apps:{app_a.id}", "callup:app:-1"):
            assert (await subscribe(ws, name, 2))["code"] in ("forbidden", "unknown_channel"), name


async def test_dashboard_receives_the_same_events(two_apps, app_a: TestApp, make_user) -> None:
    a, b = two_apps
    operator = await make_user(role="operator")
    async with b.ws_connect("/ws", headers=operator.headers) as ws:
        assert (await subscribe(ws, "dashboard"))["type"] == "subscribed"
        order = await create_order(a, app_a)
        seen = await status_events(ws, 3, order["id"])
    assert [(channel, data["status"]) for channel, data in seen] == [
        ("dashboard", "created"), ("dashboard", "calling"), ("dashboard", "called")]
