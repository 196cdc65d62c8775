"""Two waybills moved between the same two cars in opposite directions at once (issue 10 item 11).

Each move locks the car it leaves and the car it joins. Taken in request order, A → B and B → A each
held one car and waited for the other until PostgreSQL aborted one of them (deadlock → 500); the
cars are now locked in id order, so both moves always succeed.
"""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient

from backend.fleet.kinds import PASSENGER
from tests.conftest import UserFactory
from tests.fleet.conftest import Api, seed_passenger_car, waybill_body

ROUNDS = 12


async def test_opposite_moves_never_deadlock(two_apps: tuple[TestClient, TestClient], make_user: UserFactory) -> None:
    a, b = two_apps
    mechanic = Api(a, await make_user(role="mechanic"))
    driver = await make_user(role="driver")
    on_a, on_b = Api(a, driver), Api(b, driver)          # one move through each instance
    car_x = await seed_passenger_car(mechanic, "A001AA54")
    car_y = await seed_passenger_car(mechanic, "A002AA54")
    first = await on_a.ok("POST", "/api/passenger-car-waybills/", waybill_body(PASSENGER, car_x), 201)
    second = await on_a.ok("POST", "/api/passenger-car-waybills/", waybill_body(PASSENGER, car_y), 201)

    where = {first["id"]: car_x, second["id"]: car_y}
    for _ in range(ROUNDS):
        # Swap: each waybill moves to the car the other one is on, both at the same time.
        target = {first["id"]: where[second["id"]], second["id"]: where[first["id"]]}
        answers = await asyncio.gather(
            on_a.call("PATCH", f"/api/passenger-car-waybills/{first['id']}/", {"car": target[first["id"]]}),
            on_b.call("PATCH", f"/api/passenger-car-waybills/{second['id']}/", {"car": target[second["id"]]}))
        assert [status for status, _ in answers] == [200, 200], answers
        where = target

    for waybill_id, car in where.items():
        row = await on_a.ok("GET", f"/api/passenger-car-waybills/{waybill_id}/")
        last = await mechanic.ok("GET", "/api/passenger-car-odometer-fuel/last/", car=car)
        # Consistent: on the car it was last moved to, issued from that car's latest snapshot.
        assert row["car"] == car and row["upon_issuance"] == last["fuel"] == row["availability_upon_delivery"]
