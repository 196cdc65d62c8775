"""The statements of adding a record (records.create_record), compiled once per kind for the raw asyncpg pool.

Through SQLAlchemy's execution layer the same work took eleven round trips, and the request ~3.9 ms
of server CPU (issue 11); here it is two statements between BEGIN and COMMIT:

1. `start` locks the waybill's car as `snapshots.lock_car` does (the car row first, records.py)
   and reads what the record is computed from: the waybill, its norm in force (norms.norm_query),
   the car's last live snapshot (snapshots.last_snapshot_query) and the sums over the waybill's
   live records (SPEC §5.5).
2. `write` inserts the snapshot, the record pointing at it and the waybill's new aggregates, in
   one statement of data-modifying CTEs, **only if** what `start` read is still what the database
   holds: its `fresh` CTE reads the same again and compares.

Why the comparison: in READ COMMITTED a statement sees the rows committed when it began, and a
lock it waits for does not refresh that view, so `start` may have read the chain just before the
previous holder of the car lock committed. `write` is a later statement, run under the lock, so
its view is current. When they differ, records.create_record reads again (now under the lock) and
computes again. Comparing values rather than versions keeps the rule local: whatever another
writer changed, a record computed from equal inputs is the record the locked read would give.
Norms are not compared: their writers never take the car lock (snapshots.lock_car), so no order
between a norm edit and a record exists to keep.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Numeric,
    Select,
    and_,
    bindparam,
    exists,
    func,
    insert,
    select,
    true,
    update,
)

from backend.db import Statement, compiled
from backend.fleet.kinds import KINDS, Kind
from backend.fleet.norms import norm_query
from backend.fleet.snapshots import car_lock, last_snapshot_query
from backend.fleet.tables import AGGREGATES

# Columns of a record the database fills in itself, or the write statement from the new snapshot.
_NOT_BOUND = frozenset({"id", "snapshot_id", "created_at", "updated_at", "deleted_at"})
# What a record's computation and checks read from `start`, compared by `write`; besides these, the
# waybill's deleted_at (must still be NULL), the norm (see above) and car_deleted_at, which comes from the
# locked car row itself: PostgreSQL returns the newest version of a row it waited to lock.
_SUMS = ("spent", "received", "required")
SEEN = ("car_id", "driver_id", "date", "norm_season", "upon_issuance", "start_odometer", "start_fuel", *_SUMS)


def record_sums(kind: Kind) -> tuple[ColumnElement[Any], ...]:
    """Σ fuel_used, Σ fuel_refueled, Σ fuel_used_normal of the records in the FROM (0 when none),
    labelled spent, received and required: the inputs of computations.waybill_totals (SPEC §5.5)."""
    r = kind.records
    return (func.coalesce(func.sum(r.c.fuel_used), 0).label("spent"),
            func.coalesce(func.sum(r.c.fuel_refueled), 0).label("received"),
            func.coalesce(func.sum(r.c.fuel_used_normal), 0).label("required"))


@dataclass(frozen=True, slots=True)
class RecordStatements:
    """The statements of adding a record of one kind, and the record columns `write` binds."""

    start: Statement    # waybill_id -> the waybill's columns, norm_*, start_*, spent/received/required,
                        # car_deleted_at; no row: no such waybill
    write: Statement    # the record's columns, waybill_date, the aggregates and seen_* -> the record row,
                        # or no row when seen_* are no longer current
    record_columns: tuple[str, ...]
    car_of: Statement   # waybill_id -> its car_id, unlocked: before `start` runs again (records.py)


def _reads(kind: Kind) -> Select[Any]:
    """The waybill `waybill_id` with everything a new record of it is computed from."""
    w, r = kind.waybills, kind.records
    norm = norm_query(kind, w.c.car_id, w.c.norm_season, w.c.date).lateral("norm")
    snapshot = last_snapshot_query(kind, w.c.car_id).lateral("start")
    sums = select(*record_sums(kind)).where(r.c.waybill_id == w.c.id, r.c.deleted_at.is_(None)).lateral("sums")
    return (select(w, *(norm.c[name].label(f"norm_{name}") for name in kind.norm_columns),
                   snapshot.c.odometer.label("start_odometer"), snapshot.c.fuel.label("start_fuel"), sums)
            .select_from(w.outerjoin(norm, true()).outerjoin(snapshot, true()).join(sums, true()))
            .where(w.c.id == bindparam("waybill_id")))


def _start(kind: Kind) -> Statement:
    w = kind.waybills
    car = car_lock(kind, select(w.c.car_id).where(w.c.id == bindparam("waybill_id")).scalar_subquery()).cte("car")
    waybill = _reads(kind).subquery("waybill")
    return compiled(select(waybill, car.c.deleted_at.label("car_deleted_at"))
                    .select_from(waybill.join(car, car.c.id == waybill.c.car_id)))


def _write(kind: Kind) -> tuple[Statement, tuple[str, ...]]:
    s, r, w = kind.snapshots, kind.records, kind.waybills

    def bound(name: str, column: Any) -> Any:
        return bindparam(name, type_=column.type)

    fresh = _reads(kind).cte("fresh")
    # The sums as they are: a numeric(15,3) cast could overflow where the column never does.
    seen = {name: bindparam(f"seen_{name}", type_=Numeric() if name in _SUMS else fresh.c[name].type)
            for name in SEEN}
    current = (select(fresh.c.id).where(fresh.c.deleted_at.is_(None), *(fresh.c[name] == seen[name] for name in SEEN))
               .cte("current"))
    snapshot = (insert(s).from_select(
        ["car_id", "odometer", "fuel", "date", "waybill_id"],
        select(bound("car_id", s.c.car_id), bound("odometer_after", s.c.odometer), bound("fuel_on_return", s.c.fuel),
               bound("waybill_date", s.c.date), current.c.id))
                .returning(s.c.id).cte("snapshot"))
    columns = tuple(column.name for column in r.c if column.name not in _NOT_BOUND)
    record = (insert(r).from_select([*columns, "snapshot_id"],
                                    select(*(bound(name, r.c[name]) for name in columns), snapshot.c.id))
              .returning(*r.c).cte("record"))
    # Data-modifying CTEs run to completion whether or not the main query reads them.
    totals = (update(w).where(and_(w.c.id == bindparam("waybill_id"), exists(select(current.c.id))))
              .values({**{name: bound(name, w.c[name]) for name in AGGREGATES if name != "upon_issuance"},
                       "updated_at": func.now()})
              .returning(w.c.id).cte("totals"))
    return compiled(select(record).add_cte(totals)), columns


def _statements(kind: Kind) -> RecordStatements:
    write, columns = _write(kind)
    w = kind.waybills
    car_of = compiled(select(w.c.car_id).where(w.c.id == bindparam("waybill_id")))
    return RecordStatements(start=_start(kind), write=write, record_columns=columns, car_of=car_of)


STATEMENTS: dict[str, RecordStatements] = {kind.name: _statements(kind) for kind in KINDS}
