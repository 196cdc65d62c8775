"""/dashboard in headless Chromium: sign in, live map, counts, funnel and feed, reload, recovery, sign out."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient

from backend import keys
from backend.callup import apps
from tests.browser.conftest import Browser
from tests.conftest import AppFactory, UserFactory
from tests.sharing.conftest import add_car

COUNT = "return Number(document.querySelector('#state-counts [data-state=\"' + arguments[0] + '\"] b')?.textContent)"
CAR_STATE = "return document.querySelector('#map g[data-car=\"' + arguments[0] + '\"]')?.dataset.state"
ORDER_STATUS = "return document.querySelector('#orders tr[data-order=\"' + arguments[0] + '\"]')?.dataset.status"
FEED_TEXT = "return [...document.querySelectorAll('#feed li .text')].map(e => e.textContent).join('\\n')"
STATUS = "document.getElementById('status').dataset"     # connects, recovered, refetches


async def sign_in(browser: Browser, client: TestClient, login: str, password: str) -> None:
    await browser.get(str(client.make_url("/dashboard")))
    await browser.until("return !document.getElementById('signin-view').hidden", what="sign-in form shown")
    await browser.type_into("#login", login)
    await browser.type_into("#password", password)
    await browser.click("#signin-button")
    await browser.until("return document.getElementById('status').textContent === 'live'", what="socket live")


async def close_server_sockets(client: TestClient) -> None:
    """Drop every websocket from the server side, like an instance restart or a lost network."""
    await asyncio.gather(*(ws.close(code=1012, message=b"restart") for ws in tuple(client.app[keys.SOCKETS])))


async def test_dashboard_follows_cars_orders_and_events_live(make_client: AppFactory, make_user: UserFactory,
                                                             browser: Browser) -> None:
    client = await make_client()
    admin = await make_user(role="admin")
    operator = await make_user(role="operator", name="Olga", surname="Smirnova")
    customer = await make_user(role="client", name="Ivan", surname="Petrov", phone="+79001234567")
    cars = [await add_car(client, admin, number=number, lat=lat, lon=lon, fuel_level=fuel)
            for number, lat, lon, fuel in (("A101AA54", "55.030199", "82.920430", "40"),
                                           ("B202BB54", "55.041500", "82.936100", "22"),
                                           ("C303CC54", "55.024800", "82.948800", "35"),
                                           ("E404EE54", "55.036600", "82.905500", "12"))]
    resp = await client.post(f"/api/operator/cars/{cars[2]['id']}/state/", json={"state": "maintenance"},
                             headers=operator.headers)
    assert resp.status == 200, await resp.text()

    await sign_in(browser, client, operator.login, operator.password)
    assert await browser.js("return document.getElementById('who-name').textContent") == "Olga Smirnova"
    assert await browser.js("return document.getElementById('signin-view').hidden") is True
    assert await browser.until("return document.querySelectorAll('#map g[data-car]').length") == 4
    assert await browser.js(COUNT, "available") == 3 and await browser.js(COUNT, "maintenance") == 1

    # A booking made elsewhere: the car turns reserved on the map and in the counts, the feed says so.
    booking = await client.post("/api/bookings", json={"car": cars[0]["id"]}, headers=customer.headers)
    assert booking.status == 201, await booking.text()
    booking_id = (await booking.json())["id"]
    await browser.until(CAR_STATE + " === 'reserved'", cars[0]["id"], what="car reserved on the map")
    await browser.until(COUNT + " === 1", "reserved", what="one reserved car counted")
    assert await browser.js(COUNT, "available") == 2
    await browser.until(FEED_TEXT + f".includes('Booking #{booking_id}: car A101AA54 reserved')",
                        what="booking in the feed")
    client_cell = "return document.querySelector('#cars tr[data-car=\"' + arguments[0] + '\"] td.client').textContent"
    await browser.until(client_cell + ".includes('Ivan Petrov')", cars[0]["id"], what="client shown")

    # CallUp: one order verified through /v1, one left waiting; the funnel and the timeline follow.
    app = await apps.create(client.app[keys.DB], "browser app")
    headers = {"X-Application-Token": str(app["token"])}
    orders = []
    for phone in ("79001110001", "79001110002"):
        resp = await client.post("/v1/orders", json={"phone": phone, "code": "4321"}, headers=headers)
        assert resp.status == 200, await resp.text()
        orders.append((await resp.json())["data"]["id"])
    await browser.until(ORDER_STATUS + " === 'called'", orders[0], what="order called (simulated provider)")
    verified = await client.get(f"/v1/auth/{orders[0]}/4321", headers=headers)
    assert verified.status == 200, await verified.text()
    await browser.until(ORDER_STATUS + " === 'verified'", orders[0], what="order verified")
    timeline = await browser.js("return document.querySelector('#orders tr[data-order=\"' + arguments[0] + "
                                "'\"] .timeline').textContent", orders[0])
    assert "created" in timeline and "called" in timeline and "verified" in timeline
    await browser.until("return document.getElementById('conversion').textContent.includes('50%')",
                        what="conversion 1 of 2")
    stage = "return document.querySelector('#funnel [data-stage=\"' + arguments[0] + '\"] .count').firstChild.textContent"
    assert await browser.js(stage, "created") == "2" and await browser.js(stage, "verified") == "1"
    await browser.until(FEED_TEXT + f".includes('CallUp order {orders[0][:8]} → verified')", what="order feed line")

    # The plots read /api/ops/stats: this socket is counted, the booking is in this minute's bar.
    await browser.until("return Number(document.getElementById('chart-bookings').dataset.total) >= 1",
                        what="booking counted in the plot")
    await browser.until("return Number(document.getElementById('kpi-sockets').textContent) >= 1", what="sockets")
    await browser.until("return document.querySelectorAll('#chart-sockets path.line').length", within=8,
                        what="sockets line drawn")
    await browser.screenshot("dashboard-desktop")

    # 900 px: one column, nothing cut off or scrolled sideways.
    await browser.size(900, 2400)
    await browser.until("return document.documentElement.scrollWidth <= window.innerWidth",
                        what="no horizontal scroll at 900 px")
    assert await browser.js("const s = document.querySelector('.cars-card .scroll');"
                            "return s.scrollWidth <= s.clientWidth") is True, "cars table scrolls sideways"
    await browser.screenshot("dashboard-900px")
    await browser.size(1440, 1400)

    # A reload keeps the orders and the feed: they come from the channel's history over REST.
    await browser.call(browser.driver.refresh)
    await browser.until("return document.getElementById('status').textContent === 'live'", what="live again")
    assert await browser.until(ORDER_STATUS, orders[0]) == "verified"
    assert await browser.js(ORDER_STATUS, orders[1]) in ("called", "calling", "created")
    assert f"Booking #{booking_id}" in await browser.js(FEED_TEXT)
    assert await browser.js(COUNT, "reserved") == 1

    # A dropped socket: the page resubscribes with `since` and gets what it missed, no refetch.
    await close_server_sockets(client)
    cancelled = await client.post(f"/api/bookings/{booking_id}/cancel", json={}, headers=customer.headers)
    assert cancelled.status == 200, await cancelled.text()
    await browser.until(f"return {STATUS}.connects === '2' && {STATUS}.recovered === 'true'",
                        what="resubscribed with since, recovered")
    await browser.until(CAR_STATE + " === 'available'", cars[0]["id"], what="cancel recovered")
    assert f"Booking #{booking_id}: car A101AA54 cancelled" in await browser.js(FEED_TEXT)
    assert await browser.js(f"return {STATUS}.refetches") == "0"

    # History lost (a new epoch): `recovered: false`, and the page refetches over REST.
    await client.app[keys.REDIS].delete(*client.app[keys.BUS].streams.keys("dashboard"))
    await close_server_sockets(client)
    await browser.until(f"return {STATUS}.refetches === '1'", what="refetched after recovered: false")
    await browser.until("return document.getElementById('status').textContent === 'live'", what="live after refetch")
    assert await browser.js("return document.querySelectorAll('#map g[data-car]').length") == 4
    assert await browser.console_errors() == []

    # Sign out: back to the form, nothing of the session left on screen or in storage.
    await browser.click("#signout")
    await browser.until("return !document.getElementById('signin-view').hidden", what="sign-in form back")
    assert await browser.js("return document.getElementById('app').hidden") is True
    assert await browser.js("return document.querySelectorAll('#cars tr, #orders tr, #feed li').length") == 0
    assert await browser.js("return sessionStorage.getItem('dashboard-token')") is None
    await browser.screenshot("dashboard-signed-out")


async def test_an_expired_token_returns_to_the_sign_in_form(make_client: AppFactory, make_user: UserFactory,
                                                            browser: Browser) -> None:
    client = await make_client(access_ttl=3.0)
    admin = await make_user(role="admin")
    await add_car(client, admin, number="X505XX54")
    await sign_in(browser, client, admin.login, admin.password)
    assert await browser.until("return document.querySelectorAll('#cars tr').length") == 1
    # The page signs out at the token's exp (the server allows a 30 s leeway past it, SPEC §3.1):
    # no stale table stays on screen.
    await browser.until("return !document.getElementById('signin-view').hidden", within=8, what="back to sign-in")
    assert "expired" in await browser.js("return document.getElementById('signin-error').textContent")
    assert await browser.js("return document.querySelectorAll('#cars tr').length") == 0
    assert await browser.js("return document.getElementById('app').hidden") is True
