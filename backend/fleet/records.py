"""Waybill records and the odometer/fuel chain of each car (SPEC §5.6).

The chain of a car is its live snapshots in **id order**. Each record owns the snapshot it
created; its start (`odometer_before`, `fuel_before_departure`) is the live snapshot just before
its own. A snapshot without a record is a mechanic's measurement and restarts the chain. Id order
rather than departure time: departure times are times of day inside a waybill's date, records of
several waybills of one car interleave, and the order in which records were entered under the
car lock is the order in which the odometer moved.

Lock order, followed by every writer so two writers never deadlock: the car row first
(`snapshots.lock_car`; a writer needing two cars, a waybill moved between them, takes both at once in
id order with `snapshots.lock_cars`; a create whose waybill moved to another car while it waited
rolls back and starts over rather than hold one car while waiting for the other), then waybills,
snapshots and records.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

import asyncpg
from sqlalchemy import and_, func, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend.db import transaction, wrote
from backend.errors import ApiError, field_error, forbidden, invalid, missing_pk, not_found
from backend.fleet.computations import Start, trip_errors, waybill_totals
from backend.fleet.issuance import reissue
from backend.fleet.kinds import Kind
from backend.fleet.snapshots import lock_car, start_before
from backend.fleet.statements import SEEN, STATEMENTS, RecordStatements, record_sums
from backend.principal import Principal

NO_START = "У автомобиля нет снимка одометра и топлива: сначала внесите начальный снимок."


class HotWriters:
    """Room for record creates on an instance's hot pool (keys.HOT_DB), which every request's identity
    lookup shares.

    A create holds its connection while it waits for the car lock, behind another create or a long
    recompute; at most all but one of the pool's connections may wait so, and authentication never
    stalls behind a busy car. One per instance, sized from its pool at the first create.
    """

    def __init__(self) -> None:
        self._slots: asyncio.Semaphore | None = None

    def slots(self, pool: asyncpg.Pool) -> asyncio.Semaphore:
        if self._slots is None:
            self._slots = asyncio.Semaphore(max(1, pool.get_max_size() - 1))
        return self._slots


async def create_record(pool: asyncpg.Pool, kind: Kind, principal: Principal,
                        values: Mapping[str, Any]) -> dict[str, Any]:
    """Add a trip to a waybill: compute it from the norm and the last snapshot, extend the chain.

    `values` holds every input of the record (column names; the API's schema fills in defaults).
    On the raw asyncpg pool: two statements in one transaction, usually (statements.py); the rules
    are the ones update and delete use (computations.py, kinds.py, the lock order above).
    """
    wrote()
    async with pool.acquire() as conn:
        while True:
            try:
                async with conn.transaction():
                    return await _add_record(conn, kind, principal, values)
            except _CarMoved:
                continue        # rolled back: the old car's lock is gone, now take the new one alone


class _CarMoved(Exception):
    """The waybill was moved to another car while its create waited for the old car's lock."""


async def _add_record(conn: asyncpg.Connection, kind: Kind, principal: Principal,
                      values: Mapping[str, Any]) -> dict[str, Any]:
    """create_record inside its transaction; raises _CarMoved rather than lock a second car."""
    statements = STATEMENTS[kind.name]
    locked: int | None = None
    while True:
        start = await conn.fetchrow(statements.start.sql, *statements.start.args(waybill_id=values["waybill_id"]))
        if start is None:
            raise missing_pk(kind.waybill_field, values["waybill_id"])
        # The statement that takes the car lock may have read the car just before the previous holder
        # committed; only a read of a car already locked is sure to be current.
        current = locked is not None
        locked = start["car_id"]
        try:
            record, totals = _new_record(kind, principal, values, start)
        except ApiError:
            if current:
                raise
            await _still_on(conn, statements, values["waybill_id"], locked)
            continue                # refuse only on what the car looks like under our lock
        write = statements.write
        written = await conn.fetchrow(write.sql, *write.args(
            **{name: record[name] for name in statements.record_columns}, **totals, waybill_date=start["date"],
            **{f"seen_{name}": start[name] for name in SEEN}))
        if written is not None:
            return dict(written)
        # What `start` read changed before we held the lock: read again, under it now.
        if current:
            raise RuntimeError(f"record of waybill {values['waybill_id']}: the chain moved under the car lock")
        await _still_on(conn, statements, values["waybill_id"], locked)


async def _still_on(conn: asyncpg.Connection, statements: RecordStatements, waybill_id: int, car_id: int) -> None:
    """Before `start` runs again: raise _CarMoved if the waybill left `car_id` (whose lock we hold).

    `start` would wait for the new car while holding the old one, out of id order, and deadlock
    with a writer holding the new car that wants the old. Nobody can move the waybill back
    meanwhile: that takes the lock we hold.
    """
    if await conn.fetchval(statements.car_of.sql, *statements.car_of.args(waybill_id=waybill_id)) != car_id:
        raise _CarMoved


def _new_record(kind: Kind, principal: Principal, values: Mapping[str, Any],
                start: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The columns of a new record of the waybill `start` (statements._start) and the waybill's new
    aggregates, or the refusal (400/403) the waybill, its car, norm, chain or the trip call for."""
    if start["deleted_at"] is not None:
        raise field_error(kind.waybill_field, "Путевой лист удалён: добавлять в него строки нельзя.")
    if start["car_deleted_at"] is not None:
        raise field_error(kind.waybill_field, "Машина этого путевого листа удалена.")
    if not kind.may_write_records(principal, start["driver_id"]):
        raise forbidden("Добавлять строки можно только в свой путевой лист.")
    if start[f"norm_{kind.norm_columns[0]}"] is None:
        raise invalid({"non_field_errors": [
            f"Нет нормы расхода для автомобиля на {start['date']:%Y-%m-%d} (сезон {start['norm_season']})."]})
    if start["start_odometer"] is None:
        raise invalid({"non_field_errors": [NO_START]})
    trip = {**values, **{column: start[f"norm_{column}"] for column in kind.norm_columns}}
    computed = kind.compute(Start(start["start_odometer"], start["start_fuel"]), trip)
    if errors := trip_errors(trip, computed):
        raise invalid(errors)
    record = {**trip, **computed, "car_id": start["car_id"]}
    # The sums over the records already there plus the new one: refresh_waybills' sums after the insert.
    totals = waybill_totals(start["upon_issuance"], start["spent"] + record["fuel_used"],
                            start["received"] + record["fuel_refueled"],
                            start["required"] + record["fuel_used_normal"])
    return record, totals


async def _locked_record(conn: AsyncConnection, kind: Kind, principal: Principal, record_id: int) -> RowMapping:
    """Lock the record's car, then return the record if `principal` may see (404) and change (403) it."""
    r, w = kind.records, kind.waybills
    car_id = (await conn.execute(select(r.c.car_id).where(r.c.id == record_id, r.c.deleted_at.is_(None))
                                 )).scalar_one_or_none()
    if car_id is None:
        raise not_found()
    await lock_car(conn, kind, car_id)
    query = kind.scope_records(select(r).where(r.c.id == record_id, r.c.deleted_at.is_(None)), principal)
    record = (await conn.execute(query)).mappings().one_or_none()
    if record is None:
        raise not_found()
    driver_id = (await conn.execute(select(w.c.driver_id).where(w.c.id == record["waybill_id"]))).scalar_one()
    if not kind.may_write_records(principal, driver_id):
        raise forbidden("Изменять строки можно только в своём путевом листе.")
    return record


async def update_record(db: AsyncEngine, kind: Kind, principal: Principal, record_id: int,
                        changes: Mapping[str, Any]) -> RowMapping:
    """Change a record's inputs; recompute it, the later records of its car and their waybills."""
    r = kind.records
    async with transaction(db) as conn:
        record = await _locked_record(conn, kind, principal, record_id)
        if changes.get("waybill_id", record["waybill_id"]) != record["waybill_id"]:
            raise field_error(kind.waybill_field, "Нельзя перенести строку в другой путевой лист.")
        inputs = {name: value for name, value in changes.items() if name != "waybill_id"}
        if inputs:
            await conn.execute(update(r).where(r.c.id == record_id).values(**inputs, updated_at=func.now()))
        changed = await recompute(conn, kind, record["car_id"], record["snapshot_id"], record["snapshot_id"])
        await refresh_waybills(conn, kind, changed | {record["waybill_id"]})
        return (await conn.execute(select(r).where(r.c.id == record_id))).mappings().one()


async def delete_record(db: AsyncEngine, kind: Kind, principal: Principal, record_id: int) -> None:
    """Soft-delete a record and its snapshot; the later records of the car start earlier now."""
    async with transaction(db) as conn:
        record = await _locked_record(conn, kind, principal, record_id)
        await _soft_delete(conn, kind, [record["id"]], [record["snapshot_id"]])
        changed = await recompute(conn, kind, record["car_id"], record["snapshot_id"], record["snapshot_id"])
        await refresh_waybills(conn, kind, changed | {record["waybill_id"]})


async def drop_waybill_records(conn: AsyncConnection, kind: Kind, waybill: Mapping[str, Any]) -> None:
    """Soft-delete every record of a waybill being deleted and mend the chain (car already locked)."""
    r = kind.records
    rows = (await conn.execute(select(r.c.id, r.c.snapshot_id).where(
        r.c.waybill_id == waybill["id"], r.c.deleted_at.is_(None)))).all()
    if not rows:
        return
    snapshot_ids = [row.snapshot_id for row in rows]
    await _soft_delete(conn, kind, [row.id for row in rows], snapshot_ids)
    changed = await recompute(conn, kind, waybill["car_id"], min(snapshot_ids), max(snapshot_ids))
    await refresh_waybills(conn, kind, changed | {waybill["id"]})


async def mend_after_measurement(conn: AsyncConnection, kind: Kind, snapshot: Mapping[str, Any]) -> None:
    """Recompute the chain after the measurement `snapshot` was edited or deleted (already written).

    The walk starts at the measurement itself, not after it: the waybills issued from it must
    re-read its fuel too. The car must be locked.
    """
    changed = await recompute(conn, kind, snapshot["car_id"], snapshot["id"], snapshot["id"])
    await refresh_waybills(conn, kind, changed)


async def _soft_delete(conn: AsyncConnection, kind: Kind, record_ids: list[int], snapshot_ids: list[int]) -> None:
    await conn.execute(update(kind.records).where(kind.records.c.id.in_(record_ids)).values(deleted_at=func.now()))
    await conn.execute(update(kind.snapshots).where(kind.snapshots.c.id.in_(snapshot_ids))
                       .values(deleted_at=func.now()))


async def recompute(conn: AsyncConnection, kind: Kind, car_id: int, from_id: int, settled_after: int) -> set[int]:
    """Recompute the car's records whose snapshot id is >= `from_id`, in chain order.

    Up to snapshot `settled_after` something changed (an edited record, deleted ones, an edited
    measurement), so every record is recomputed; past it the walk stops at the first record whose
    start is unchanged or at a measurement, because from there on nothing can differ. Nothing
    before `from_id` may have changed. Then re-reads `upon_issuance` of the waybills issued from
    the walked range (issuance.py). Returns the ids of waybills whose records or upon_issuance
    changed. The car must be locked.
    """
    s, r = kind.snapshots, kind.records
    start = await start_before(conn, kind, car_id, from_id)
    walk = (select(s.c.id.label("sid"), s.c.odometer, s.c.fuel, *r.c)
            .select_from(s.outerjoin(r, and_(r.c.snapshot_id == s.c.id, r.c.deleted_at.is_(None))))
            .where(s.c.car_id == car_id, s.c.id >= from_id, s.c.deleted_at.is_(None))
            .order_by(s.c.id))
    changed: set[int] = set()
    stopped_at: int | None = None                # the first snapshot the walk left as it was
    for row in (await conn.execute(walk)).mappings():
        settled = row["sid"] > settled_after
        if row["id"] is None:                    # a measurement: the chain restarts from it
            if settled:
                stopped_at = row["sid"]
                break
            start = Start(row["odometer"], row["fuel"])
            continue
        if start is None:
            raise invalid({"non_field_errors": [NO_START]})
        if settled and (start.odometer, start.fuel) == (row["odometer_before"], row["fuel_before_departure"]):
            stopped_at = row["sid"]
            break
        computed = kind.compute(start, row)
        if errors := trip_errors(row, computed):
            prefix = "" if row["sid"] == from_id else f"Строка №{row['id']}: "
            raise invalid({name: [prefix + m for m in messages] for name, messages in errors.items()})
        merged = {**row, **computed}
        stale = {name: value for name, value in computed.items() if row[name] != value}
        if stale:
            await conn.execute(update(r).where(r.c.id == row["id"]).values(**stale, updated_at=func.now()))
            await conn.execute(update(s).where(s.c.id == row["sid"]).values(
                odometer=merged["odometer_after"], fuel=merged["fuel_on_return"]))
            changed.add(row["waybill_id"])
        start = Start(merged["odometer_after"], merged["fuel_on_return"])
    return changed | await reissue(conn, kind, car_id, from_id, stopped_at)


async def refresh_waybills(conn: AsyncConnection, kind: Kind, waybill_ids: Iterable[int]) -> None:
    """Store the aggregates of SPEC §5.5 of these waybills, summed over their live records."""
    ids = sorted(set(waybill_ids))
    if not ids:
        return
    r, w = kind.records, kind.waybills
    sums = (select(w.c.id, w.c.upon_issuance, *record_sums(kind))
            .select_from(w.outerjoin(r, and_(r.c.waybill_id == w.c.id, r.c.deleted_at.is_(None))))
            .where(w.c.id.in_(ids)).group_by(w.c.id, w.c.upon_issuance))
    for row in (await conn.execute(sums)).all():
        totals = waybill_totals(row.upon_issuance, row.spent, row.received, row.required)
        await conn.execute(update(w).where(w.c.id == row.id).values(**totals, updated_at=func.now()))
