"""Invariants of the fleet data, checked against the database (used by several test modules)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from backend.fleet.computations import Start, trip_errors
from backend.fleet.kinds import KINDS, Kind
from tests.fleet.conftest import World

TABLES = [table for kind in KINDS for table in (kind.cars, kind.norms, kind.snapshots, kind.waybills, kind.records)]


async def everything(world: World) -> list[list[dict[str, Any]]]:
    """Every row of every fleet table: compare before and after a refused write."""
    return [await world.rows(table) for table in TABLES]


async def assert_chain(world: World, kind: Kind, car: int) -> list[dict]:
    """Every live record of `car` starts where the previous live snapshot ends and matches its snapshot."""
    snapshots = [s for s in await world.rows(kind.snapshots, car_id=car) if s["deleted_at"] is None]
    records = {r["snapshot_id"]: r for r in await world.rows(kind.records, car_id=car) if r["deleted_at"] is None}
    dead = [r for r in await world.rows(kind.records, car_id=car) if r["deleted_at"] is not None]
    live_ids = {s["id"] for s in snapshots}
    assert not any(r["snapshot_id"] in live_ids for r in dead), "a deleted record left its snapshot alive"
    previous = None
    chain = []
    for snap in snapshots:
        record = records.get(snap["id"])
        if record is not None:
            assert previous is not None
            assert (record["odometer_before"], record["fuel_before_departure"]) == previous
            computed = kind.compute(Start(*previous), record)
            assert {k: record[k] for k in computed} == computed
            assert trip_errors(record, computed) == {}
            assert (snap["odometer"], snap["fuel"]) == (record["odometer_after"], record["fuel_on_return"])
            chain.append(record)
        previous = (snap["odometer"], snap["fuel"])
    assert set(records) <= live_ids
    return chain


async def assert_waybill(world: World, kind: Kind, waybill: int) -> dict:
    """The aggregates of SPEC §5.5 hold for `waybill` over its live records."""
    (row,) = await world.rows(kind.waybills, id=waybill)
    live = [r for r in await world.rows(kind.records, waybill_id=waybill) if r["deleted_at"] is None]
    spent = sum((r["fuel_used"] for r in live), Decimal(0))
    received = sum((r["fuel_refueled"] for r in live), Decimal(0))
    required = sum((r["fuel_used_normal"] for r in live), Decimal(0))
    assert (row["total_spent"], row["total_received"], row["required_by_norm"]) == (spent, received, required)
    assert row["availability_upon_delivery"] == row["upon_issuance"] + received - spent
    assert row["savings"] == max(Decimal(0), required - spent)
    assert row["overrun"] == max(Decimal(0), spent - required)
    assert row["savings"] == 0 or row["overrun"] == 0
    await assert_issuance(world, kind, row)
    return row


async def assert_issuance(world: World, kind: Kind, waybill: dict[str, Any]) -> None:
    """`upon_issuance` is the current fuel of the issuing snapshot, or of the latest live one before it
    if that snapshot was deleted (backend/fleet/issuance.py)."""
    issued = waybill["issued_from_snapshot_id"]
    assert issued is not None, "every waybill issued by the server knows its snapshot"
    snapshots = await world.rows(kind.snapshots, car_id=waybill["car_id"])
    assert issued in {s["id"] for s in snapshots}, "issued from another car's snapshot"
    live = [s for s in snapshots if s["deleted_at"] is None and s["id"] <= issued]
    if live:   # with none left the stored value stays, and there is nothing to compare it with
        assert waybill["upon_issuance"] == live[-1]["fuel"], (waybill["id"], issued, live[-1]["id"])
