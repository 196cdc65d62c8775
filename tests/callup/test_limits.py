"""Order-creation limits in Redis (SPEC §6.2, §11.21): per phone across apps, per app, shared by instances."""

from __future__ import annotations

import asyncio

from backend.config import Rate
from tests.callup.conftest import AppFactory, TestApp, create_order, error_of


async def _post(client, app: TestApp, phone: str):
    return await client.post("/v1/orders", json={"phone": phone}, headers=app.headers)


async def test_phone_limit_holds_across_apps(make_client, make_app: AppFactory) -> None:
    client = await make_client(callup_phone_limit=Rate(2, 600))
    first, second = await make_app("first"), await make_app("second")
    await create_order(client, first, "79001234567")
    await create_order(client, second, "79001234567")
    for app in (first, second):
        resp = await _post(client, app, "79001234567")
        assert resp.status == 429
        assert 590 <= int(resp.headers["Retry-After"]) <= 600
        assert error_of(await resp.json())[0] == "rate_limited"
    await create_order(client, first, "79007654321")          # another phone is not limited


async def test_app_rate_counts_order_creations_only(make_client, make_app: AppFactory) -> None:
    client = await make_client(callup_app_rate=Rate(3, 60))
    app, other = await make_app("busy"), await make_app("quiet")
    created = [await create_order(client, app, f"7900000000{n}") for n in range(3)]
    for order in created:                                      # reads and checks are not creations
        assert (await client.get(f"/v1/orders/{order['id']}", headers=app.headers)).status == 200
        assert (await client.get(f"/v1/auth/{order['id']}/0000", headers=app.headers)).status in (200, 400)
    resp = await _post(client, app, "79000000009")
    assert resp.status == 429 and 1 <= int(resp.headers["Retry-After"]) <= 60
    await create_order(client, other, "79000000009")            # the window is the app's own


async def test_a_refused_creation_spends_no_window(make_client, make_app: AppFactory) -> None:
    """Refused by the phone's window, an app's request does not use up the app's rate (and vice versa)."""
    client = await make_client(callup_phone_limit=Rate(1, 600), callup_app_rate=Rate(2, 60))
    app = await make_app()
    await create_order(client, app, "79001112233")
    for _ in range(5):
        assert (await _post(client, app, "79001112233")).status == 429     # the phone's window is full
    await create_order(client, app, "79004445566")              # the app's second slot is still free
    assert (await _post(client, app, "79007778899")).status == 429          # and now its window is full


async def test_concurrent_creations_on_two_instances_never_pass_the_limit(make_client, app_a: TestApp) -> None:
    a = await make_client(callup_phone_limit=Rate(3, 600))
    b = await make_client(callup_phone_limit=Rate(3, 600))
    answers = await asyncio.gather(*(_post(a if n % 2 else b, app_a, "79001234567") for n in range(20)))
    assert sorted(resp.status for resp in answers) == [200] * 3 + [429] * 17
