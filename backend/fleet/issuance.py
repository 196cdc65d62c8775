"""A waybill's `upon_issuance` (SPEC §5.5): the fuel of the snapshot it was issued against.

A waybill remembers that snapshot (`issued_from_snapshot_id`) instead of only copying its fuel,
because editing or deleting an earlier record makes the chain recompute (records.py) rewrite the
fuel of later snapshots, and the fuel the car had at issuance moves with them. If the issuing
snapshot was deleted (its record was), the car's fuel at that point of the chain is the fuel of the
latest live snapshot before it. If none is left, or the snapshot is unknown (NULL, a waybill older
than sql/006 that its backfill could not place), the stored value stays.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ScalarSelect, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.fleet.kinds import Kind
from backend.fleet.snapshots import last_snapshot


async def issue(conn: AsyncConnection, kind: Kind, car_id: int) -> dict[str, Any] | None:
    """The columns of a waybill issued now for `car_id`, before any record; None if the car has no snapshot.

    The car must be locked (snapshots.lock_car): a recompute running at the same time could otherwise
    rewrite the snapshot's fuel without seeing this waybill, which is not committed yet.
    """
    snapshot = await last_snapshot(conn, kind, car_id)
    if snapshot is None:
        return None
    fuel = snapshot["fuel"]
    return {"issued_from_snapshot_id": snapshot["id"], "upon_issuance": fuel, "availability_upon_delivery": fuel,
            "total_spent": 0, "total_received": 0, "required_by_norm": 0, "savings": 0, "overrun": 0}


def fuel_at_issuance(kind: Kind) -> ScalarSelect[Any]:
    """The fuel of a waybill's issuing snapshot, or of the latest live one before it (NULL if none).

    Correlated with the waybills table of `kind`; the chain index (car_id, id) answers it.
    """
    s, w = kind.snapshots, kind.waybills
    return (select(s.c.fuel)
            .where(s.c.car_id == w.c.car_id, s.c.deleted_at.is_(None), s.c.id <= w.c.issued_from_snapshot_id)
            .order_by(s.c.id.desc()).limit(1).scalar_subquery())


async def reissue(conn: AsyncConnection, kind: Kind, car_id: int, from_id: int, until_id: int | None) -> set[int]:
    """Re-read `upon_issuance` of the car's waybills issued from snapshots in [from_id, until_id).

    Called by the chain recompute, which changed or deleted snapshots from `from_id` on and stopped
    at the unchanged live snapshot `until_id` (None: it walked to the end of the chain). A waybill
    issued from `until_id` or later still resolves to the same live snapshot with the same fuel,
    and one issued before `from_id` to an untouched one, so only this range is read. Deleted
    waybills are included, so that the identity of SPEC §5.5 holds on every row. Returns the ids
    of the waybills whose value changed; their aggregates must be refreshed. The car must be locked.
    """
    w = kind.waybills
    fuel = fuel_at_issuance(kind)
    # `!=` is NULL when no live snapshot is left, which keeps the stored value.
    query = (update(w).where(w.c.car_id == car_id, w.c.issued_from_snapshot_id >= from_id, w.c.upon_issuance != fuel)
             .values(upon_issuance=fuel).returning(w.c.id))
    if until_id is not None:
        query = query.where(w.c.issued_from_snapshot_id < until_id)
    return set((await conn.execute(query)).scalars())
