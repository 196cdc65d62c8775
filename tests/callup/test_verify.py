"""GET /v1/auth/{order_id}/{order_code} (SPEC §6.3, §11.18): outcomes, attempts, lock, expiry, races."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient

from tests.callup.conftest import (
    AppFactory,
    TestApp,
    create_order,
    error_of,
    order_code,
    order_row,
    seconds_to_expiry,
    statuses,
    wait_for_status,
)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10000:04d}"


async def check(client: TestClient, app: TestApp, order_id: str, code: str) -> tuple[int, dict]:
    resp = await client.get(f"/v1/auth/{order_id}/{code}", headers=app.headers)
    return resp.status, await resp.json()


async def test_right_code_verifies_once(client: TestClient, app_a: TestApp) -> None:
    order = await create_order(client, app_a)
    await wait_for_status(client, order["id"], "called")
    code = await order_code(client, order["id"])
    assert await check(client, app_a, order["id"], code) == (200, {"data": {"success": True}, "errors": None})
    assert (await order_row(client, order["id"]))["status"] == "verified"
    status, body = await check(client, app_a, order["id"], code)
    assert (status, error_of(body)) == (409, ("order_already_verified", "order already verified"))
    assert await statuses(client, order["id"]) == ["created", "calling", "called", "verified"]


async def test_code_may_be_checked_before_the_call_is_reported(make_client, app_a: TestApp) -> None:
    client = await make_client(callup_sim_delay=30)
    order = await create_order(client, app_a, code="4321")
    assert (await check(client, app_a, order["id"], "4321"))[0] == 200
    assert (await statuses(client, order["id"]))[-1] == "verified"


async def test_wrong_codes_count_then_lock(make_client, app_a: TestApp) -> None:
    client = await make_client(callup_max_attempts=3)
    order = await create_order(client, app_a, code="1111")
    for attempt in (1, 2, 3):
        status, body = await check(client, app_a, order["id"], "2222")
        assert (status, error_of(body)) == (400, ("invalid_code", "invalid code"))
        assert (await order_row(client, order["id"]))["attempts"] == attempt
    assert (await order_row(client, order["id"]))["status"] == "locked"
    status, body = await check(client, app_a, order["id"], "1111")      # even the right code now
    assert (status, error_of(body)[0]) == (423, "order_locked")
    assert (await order_row(client, order["id"]))["attempts"] == 3


async def test_expired_order_is_410_even_before_the_sweeper_comes(make_client, app_a: TestApp) -> None:
    client = await make_client(callup_code_ttl=0.3, sweep_interval=60)   # the sweeper's next pass is far off
    order = await create_order(client, app_a, code="1234")
    # Waiting out the TTL is the subject of the test, not a guess: the database's clock decides.
    await asyncio.sleep(await seconds_to_expiry(client, order["id"]) + 0.05)
    status, body = await check(client, app_a, order["id"], "1234")
    assert (status, error_of(body)) == (410, ("order_expired", "order expired"))
    assert (await statuses(client, order["id"]))[-1] == "expired"
    assert (await check(client, app_a, order["id"], "1234"))[0] == 410
    assert (await order_row(client, order["id"]))["attempts"] == 0


async def test_failed_call_cannot_be_verified(client: TestClient, app_a: TestApp) -> None:
    order = await create_order(client, app_a, "79001230000", code="5555")
    await wait_for_status(client, order["id"], "failed")
    status, body = await check(client, app_a, order["id"], "5555")
    assert (status, error_of(body)[0]) == (409, "order_failed")


async def test_another_apps_order_is_not_found_and_untouched(client: TestClient, app_a: TestApp,
                                                             make_app: AppFactory) -> None:
    other = await make_app("other")
    order = await create_order(client, app_a, code="1234")
    status, body = await check(client, other, order["id"], "1234")
    assert (status, error_of(body)[0]) == (404, "order_not_found")
    status, body = await check(client, other, order["id"], "9999")
    assert status == 404
    assert (await order_row(client, order["id"]))["attempts"] == 0


async def test_two_concurrent_right_codes_verify_exactly_once(two_apps, app_a: TestApp) -> None:
    a, b = two_apps
    for _ in range(5):
        order = await create_order(a, app_a, f"7900{_:07d}", code="2468")
        results = await asyncio.gather(check(a, app_a, order["id"], "2468"), check(b, app_a, order["id"], "2468"))
        assert sorted(status for status, _ in results) == [200, 409]
        assert (await statuses(a, order["id"])).count("verified") == 1


async def test_concurrent_wrong_codes_never_pass_the_attempt_limit(make_client, app_a: TestApp) -> None:
    a, b = await make_client(callup_max_attempts=3), await make_client(callup_max_attempts=3)
    order = await create_order(a, app_a, code="1357")
    results = await asyncio.gather(*(check(a if n % 2 else b, app_a, order["id"], wrong("1357")) for n in range(12)))
    assert sorted(status for status, _ in results) == [400] * 3 + [423] * 9
    row = await order_row(a, order["id"])
    assert (row["attempts"], row["status"]) == (3, "locked")
    assert (await statuses(a, order["id"])).count("locked") == 1
