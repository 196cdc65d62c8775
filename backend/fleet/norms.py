"""Fuel norms: the norm in force on a date (SPEC §5.2)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.fleet.kinds import Kind


async def norm_for(conn: AsyncConnection, kind: Kind, car_id: int, season: str,
                   date: dt.date) -> Mapping[str, Any] | None:
    """The live norm of `car_id` and `season` with the greatest date not after `date`, if any."""
    n = kind.norms
    query = (select(n).where(n.c.car_id == car_id, n.c.season == season, n.c.date <= date,
                             n.c.deleted_at.is_(None))
             .order_by(n.c.date.desc(), n.c.id.desc()).limit(1))
    return (await conn.execute(query)).mappings().one_or_none()
