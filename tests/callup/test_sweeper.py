"""The order sweeper (SPEC §6.4): several instances, each order expired, and announced, exactly once."""

from __future__ import annotations

from sqlalchemy import func, select

from backend import keys
from backend.callup.tables import transitions
from backend.db import read
from tests.callup.conftest import TestApp, create_order, status_events, statuses, wait_for_status
from tests.realtime.conftest import subscribe

N = 30


def expired_here(client) -> float:
    return client.app[keys.METRICS].registry.get_sample_value("callup_orders_expired_total") or 0.0


async def test_two_sweepers_expire_each_order_exactly_once(make_client, app_a: TestApp) -> None:
    # Calls that never finish during the test, a short TTL, and sweepers that pass every 20 ms on both.
    tiny = {"callup_code_ttl": 0.3, "sweep_interval": 0.02, "callup_sim_delay": 30}
    a, b = await make_client(**tiny), await make_client(**tiny)
    async with b.ws_connect("/ws", headers=app_a.headers) as ws:
        assert (await subscribe(ws, f"callup:app:{app_a.id}"))["type"] == "subscribed"
        ids = {(await create_order(a if n % 2 else b, app_a, f"7900000{n:04d}"))["id"] for n in range(N)}
        expired: list[str] = []
        while len(expired) < N:
            for _, data in await status_events(ws, 1):
                if data["status"] == "expired":
                    expired.append(data["id"])
    assert sorted(expired) == sorted(ids)                      # every order, none twice
    async with read(a.app[keys.DB]) as conn:
        rows = (await conn.execute(select(transitions.c.order_id, func.count()).where(
            transitions.c.to_status == "expired").group_by(transitions.c.order_id))).all()
    assert {str(order_id): count for order_id, count in rows} == dict.fromkeys(ids, 1)
    assert expired_here(a) + expired_here(b) == N              # the work was split, never repeated


async def test_final_orders_are_left_alone(make_client, app_a: TestApp) -> None:
    client = await make_client(callup_code_ttl=1.0, sweep_interval=0.02)    # longer than the 0.1 s call
    verified = await create_order(client, app_a, "79001112233", code="1234")
    failed = await create_order(client, app_a, "79001110000")
    assert (await client.get(f"/v1/auth/{verified['id']}/1234", headers=app_a.headers)).status == 200
    await wait_for_status(client, failed["id"], "failed")
    live = await create_order(client, app_a, "79004445566")
    await wait_for_status(client, live["id"], "expired")       # the sweeper has passed the others' TTL too
    assert (await statuses(client, verified["id"]))[-1] == "verified"
    assert (await statuses(client, failed["id"]))[-1] == "failed"
