"""Who may listen to `callup:app:{id}` (SPEC §8.3) and the operators' copy on `dashboard` (SPEC §6.5)."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.callup.conftest import AppFactory, TestApp, create_order, status_events
from tests.realtime.conftest import expect_close, subscribe


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


async def test_rotating_or_blocking_an_app_closes_its_sockets_everywhere(
        two_apps: tuple[TestClient, TestClient], make_app: AppFactory, admin) -> None:
    """HTTP refuses an old token at once; sockets opened with it end too (4001), on every instance."""
    a, b = two_apps
    rotated, blocked, bystander = await make_app("rotated"), await make_app("blocked"), await make_app("other")
    async with b.ws_connect("/ws", headers=rotated.headers) as ws_rotated, \
            b.ws_connect("/ws", headers=blocked.headers) as ws_blocked, \
            b.ws_connect("/ws", headers=bystander.headers) as ws_other:
        for ws in (ws_rotated, ws_blocked, ws_other):
            await ws.send_json({"type": "ping", "id": 1})
            assert (await ws.receive_json(timeout=5))["type"] == "pong"      # joined its app:{id}
        for app, action in ((rotated, "rotate-token"), (blocked, "block")):
            resp = await a.post(f"/api/callup/apps/{app.id}/{action}/", headers=admin.headers)
            assert resp.status == 200
        for ws in (ws_rotated, ws_blocked):
            await expect_close(ws, 4001)
        await ws_other.send_json({"type": "ping", "id": 2})
        assert (await ws_other.receive_json(timeout=5))["type"] == "pong"
        # An app socket cannot leave its identity channel, nor read another app's.
        await ws_other.send_json({"type": "unsubscribe", "channel": f"app:{bystander.id}", "id": 3})
        assert (await ws_other.receive_json(timeout=5))["code"] == "forbidden"
        assert (await subscribe(ws_other, f"app:{rotated.id}", 4))["code"] == "forbidden"
