"""Record creation for one car is serialized across instances (SPEC §5.6 integrity rules)."""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal
from typing import Any

from backend.fleet.kinds import PASSENGER
from tests.fleet.checks import assert_chain, assert_waybill
from tests.fleet.conftest import Api, World, seed_passenger_car, seed_record


async def test_twenty_concurrent_posts_over_two_instances(two_apps: Any, make_user: Any, world: World) -> None:
    a, b = two_apps
    mechanic, driver = await make_user(role="mechanic"), await make_user(role="driver")
    car = await seed_passenger_car(Api(a, mechanic))
    waybills = [(await Api(a, mechanic).ok("POST", "/api/passenger-car-waybills/", {
        "car": car, "driver": driver.id, "date": "2024-09-15", "norm_season": "summer"}, 201))["id"]
        for _ in range(2)]
    apis = [Api(a, driver), Api(b, driver)]

    async def post(i: int) -> dict:
        # distinct distances, so a lost or doubled start would show in the intervals
        body = seed_record(waybills[i % 2], distance_city_km=i + 1, fuel_refueled="1.5", fuel_used="1.25")
        return await apis[i % 2].ok("POST", "/api/passenger-car-records/", body, 201)

    made = await asyncio.gather(*(post(i) for i in range(20)))
    intervals = sorted((r["odometer_before"], r["odometer_after"]) for r in made)
    assert intervals[0][0] == 100000
    assert all(prev[1] == nxt[0] for prev, nxt in itertools.pairwise(intervals))
    assert all(start < end for start, end in intervals)
    assert intervals[-1][1] == 100000 + sum(range(1, 21))
    chain = await assert_chain(world, PASSENGER, car)
    assert len(chain) == 20
    assert chain[-1]["fuel_on_return"] == Decimal("40") + 20 * Decimal("0.25")
    for waybill in waybills:
        await assert_waybill(world, PASSENGER, waybill)
