"""Property: any sequence of record creates, edits, deletes, measurements (new or edited), waybill
issues and waybill deletions keeps every car's chain continuous and every waybill's identities
true (SPEC §5.5–5.6), its upon_issuance included: the current fuel of the snapshot it was issued
against, or of the latest live one before it once that one is deleted.

Each example works on a new car in the test's real database, so examples never see each other.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from backend.db import transaction
from backend.errors import ApiError
from backend.fleet import records
from backend.fleet.kinds import FIRE_TRUCK, KINDS, PASSENGER, Kind
from backend.fleet.snapshots import lock_car
from tests.fleet.checks import assert_chain, assert_waybill
from tests.fleet.conftest import World

litres = st.integers(0, 30_000).map(lambda n: Decimal(n) / 1000)
trip = st.fixed_dictionaries({"a": st.integers(0, 60), "b": st.integers(0, 30), "refueled": litres,
                              "used": litres, "late": st.booleans()})
operation = st.one_of(
    st.tuples(st.just("create"), st.integers(0, 3), trip),
    st.tuples(st.just("edit"), st.integers(0, 40), trip),
    st.tuples(st.just("delete"), st.integers(0, 40), st.none()),
    st.tuples(st.just("measure"), st.integers(0, 500), litres),
    st.tuples(st.just("remeasure"), st.integers(0, 40), litres),
    st.tuples(st.just("issue"), st.just(0), st.none()),
    st.tuples(st.just("drop"), st.integers(0, 3), st.none()),
)


def inputs(kind: Kind, t: dict[str, Any], start_odometer: int) -> dict[str, Any]:
    """Record inputs from a drawn trip; `late` sometimes makes arrival precede departure."""
    values: dict[str, Any] = {"target": "", "departure_time": dt.time(9), "arrival_time": dt.time(8 if t["late"] else 10),
                              "fuel_refueled": t["refueled"], "fuel_used": t["used"]}
    if kind is PASSENGER:
        return values | {"distance_city_km": t["a"], "distance_area_km": t["b"]}
    # b - 5 < 0 now and then: an odometer going back must be refused.
    return values | {"odometer_after": start_odometer + t["a"] + t["b"] - 5, "time_with_pump": t["a"],
                     "time_without_pump": t["b"]}


async def state(world: World, kind: Kind, car: int) -> tuple[list[dict], ...]:
    return (await world.rows(kind.records, car_id=car), await world.rows(kind.snapshots, car_id=car),
            await world.rows(kind.waybills, car_id=car))


async def run(world: World, kind: Kind, ops: list[tuple[str, int, Any]]) -> None:
    driver = await world.driver(kind.create_flag)
    car = await world.car(kind)
    # More waybills are issued along the way ("issue"), from whatever snapshot is last by then, so
    # later edits and deletes move the snapshot they were issued from.
    waybills = [await world.waybill(kind, car, driver), await world.waybill(kind, car, driver)]
    for name, n, arg in ops:
        live = [r for r in await world.rows(kind.records, car_id=car) if r["deleted_at"] is None]
        last = [s for s in await world.rows(kind.snapshots, car_id=car) if s["deleted_at"] is None]
        made_by_record = {r["snapshot_id"] for r in await world.rows(kind.records, car_id=car)}
        measurements = [s for s in last if s["id"] not in made_by_record]
        before = await state(world, kind, car)
        try:
            if name == "create":
                values = inputs(kind, arg, last[-1]["odometer"] if last else 0)
                waybill = waybills[n % len(waybills)]
                await records.create_record(world.pool, kind, driver, {"waybill_id": waybill, **values})
            elif name == "edit" and live:
                record = live[n % len(live)]
                await records.update_record(world.engine, kind, driver, record["id"],
                                            inputs(kind, arg, record["odometer_before"]))
            elif name == "delete" and live:
                await records.delete_record(world.engine, kind, driver, live[n % len(live)]["id"])
            elif name == "measure":
                await world.snapshot(kind, car, (last[-1]["odometer"] if last else 0) + n, arg)
            elif name == "remeasure":
                # What PATCH /…-odometer-fuel/{id}/ does to a measurement's fuel (SnapshotResource).
                s = kind.snapshots
                snapshot = measurements[n % len(measurements)]
                async with transaction(world.engine) as conn:
                    await lock_car(conn, kind, car)
                    await conn.execute(update(s).where(s.c.id == snapshot["id"]).values(fuel=arg))
                    await records.mend_after_measurement(conn, kind, snapshot)
            elif name == "issue" and len(waybills) < 6:
                waybills.append(await world.waybill(kind, car, driver))
            elif name == "drop":
                w = kind.waybills
                async with transaction(world.engine) as conn:
                    row = (await conn.execute(select(w).where(w.c.id == waybills[n % len(waybills)]))
                           ).mappings().one()
                    await records.drop_waybill_records(conn, kind, row)
                    await conn.execute(update(w).where(w.c.id == row["id"]).values(deleted_at=func.now()))
        except ApiError as err:
            assert err.status == 400, err
            assert await state(world, kind, car) == before, "a refused write changed the database"
        await assert_chain(world, kind, car)
        for waybill in waybills:
            await assert_waybill(world, kind, waybill)   # aggregates and upon_issuance (checks.py)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(KINDS), ops=st.lists(operation, min_size=1, max_size=14))
async def test_chain_and_waybill_identities_hold(world: World, kind: Kind, ops: list[tuple[str, int, Any]]) -> None:
    await run(world, kind, ops)


async def test_known_tricky_sequence(world: World) -> None:
    """Regression: deleting the first record while a measurement follows the second."""
    t = {"a": 10, "b": 0, "refueled": Decimal(0), "used": Decimal(1), "late": False}
    await run(world, FIRE_TRUCK, [("create", 0, t), ("create", 1, t), ("measure", 3, Decimal(7)),
                                  ("create", 0, t), ("delete", 0, None), ("edit", 0, t), ("drop", 1, None)])


async def test_waybill_issued_after_an_edited_or_deleted_record(world: World) -> None:
    """Regression: upon_issuance was copied once, so a waybill issued after a record kept the old fuel
    when that record was edited, deleted, or the measurement before it was corrected."""
    t = {"a": 10, "b": 0, "refueled": Decimal(10), "used": Decimal(8), "late": False}
    less = t | {"used": Decimal(5)}
    for kind in KINDS:
        await run(world, kind, [("create", 0, t), ("issue", 0, None), ("create", 2, t), ("issue", 0, None),
                                ("edit", 0, less), ("remeasure", 0, Decimal(30)), ("delete", 1, None),
                                ("delete", 0, None), ("create", 3, t)])
