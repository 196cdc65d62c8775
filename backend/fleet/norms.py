"""Fuel norms: the norm in force on a date (SPEC §5.2)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.fleet.kinds import Kind


async def norm_for(conn: AsyncConnection, kind: Kind, car_id: int, season: str,
                   date: dt.date) -> Mapping[str, Any] | None:
    """The live norm of `car_id` and `season` with the greatest date not after `date`, if any."""
    return (await conn.execute(norm_query(kind, car_id, season, date))).mappings().one_or_none()


Value = ColumnElement[Any]


def norm_query(kind: Kind, car_id: int | Value, season: str | Value, date: dt.date | Value) -> Select[Any]:
    """The statement of `norm_for`; its arguments may be correlated columns of a waybill (statements.py)."""
    n = kind.norms
    return (select(n).where(n.c.car_id == car_id, n.c.season == season, n.c.date <= date, n.c.deleted_at.is_(None))
            .order_by(n.c.date.desc(), n.c.id.desc()).limit(1))
