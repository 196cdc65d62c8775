"""Bookings (SPEC §4.3): reserve, start, finish, cancel, expire; who may see which.

Lock order, everywhere in this domain: user (client status) → booking → car. A reservation has
no booking row yet, so it goes user → car and then inserts; the partial unique indexes of
sql/007 settle what the locks leave open (one user booking two cars at once).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import asyncpg
from sqlalchemy import RowMapping, Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend.api.access import check
from backend.api.pagination import fetch_page
from backend.api.types import q3
from backend.db import constant, constants, read, transaction
from backend.errors import forbidden, not_found, unauthorized
from backend.principal import Principal
from backend.realtime.bus import Bus, Outbox
from backend.sharing import cars, claims
from backend.sharing.const import (
    BOOK_MOBILE,
    MANAGE_CLIENTS,
    OPERATORS,
    invalid_transition,
    reservation_expired,
)
from backend.sharing.events import booking_changed, car_changed
from backend.sharing.schemas import BookingsQuery, FinishIn, booking_view
from backend.sharing.tables import ACTIVE, bookings

b = bookings


def is_operator(principal: Principal) -> bool:
    """Operators see and cancel every booking (SPEC §4.3, §11.15)."""
    return principal.has_any(*OPERATORS)


def minutes_billed(duration_s: int) -> int:
    """Whole minutes, rounded up, at least one (SPEC §11.14)."""
    return max(1, -(-duration_s // 60))


def elapsed_seconds(start: dt.datetime, end: dt.datetime) -> int:
    """Whole seconds from `start` to `end`, rounded up (integer microseconds, no float error)."""
    micros = (end - start) // dt.timedelta(microseconds=1)
    return max(0, -(-micros // 1_000_000))


def trip_cost(duration_s: int, tariff: Decimal) -> Decimal:
    return q3(tariff * minutes_billed(duration_s))


async def reserve(pool: asyncpg.Pool, bus: Bus, user: Principal, car_id: int, ttl: float) -> dict[str, Any]:
    """Reserve a free car for `user` for `ttl` seconds (SPEC §4.3), in one statement (claims.py)."""
    user_id = user.user_id
    if user_id is None:
        raise unauthorized()
    # can_book_cars itself is the route's declared permission; the mobile flag depends on the token.
    if user.client == "mobile":
        check(user, BOOK_MOBILE)
    async with bus.deferred() as out:
        row, car = await claims.reserve(pool, user_id, car_id, ttl)
        booking = booking_view(row)
        booking_changed(out, "created", booking)
        car_changed(out, car, before={**car, "state": "available"})    # only free cars are taken
    return booking


def _visible(query: Select[Any], principal: Principal) -> Select[Any]:
    return query if is_operator(principal) else query.where(b.c.user_id == principal.user_id)


async def _lock(conn: AsyncConnection, principal: Principal, booking_id: int) -> RowMapping:
    """The booking locked FOR UPDATE, with `lapsed` (its reservation time is over); 404 if unseen."""
    query = _visible(select(b, (b.c.reserved_until <= func.now()).label("lapsed")), principal)
    row = (await conn.execute(query.where(b.c.id == booking_id).with_for_update(of=b))).mappings().one_or_none()
    if row is None:
        raise not_found()
    return row


async def _close(conn: AsyncConnection, out: Outbox, row: RowMapping, status: str) -> dict[str, Any]:
    """End a reservation (`cancelled` or `expired`, also the event's name): the car is free again."""
    query = update(b).where(b.c.id == row["id"]).values(status=status, updated_at=func.now()).returning(*b.c)
    updated = (await conn.execute(query)).mappings().one()
    before, after = await cars.move(conn, row["car_id"], "available")
    booking = booking_view(updated)
    booking_changed(out, status, booking)
    car_changed(out, after, before)
    return booking


async def start(db: AsyncEngine, bus: Bus, principal: Principal, booking_id: int) -> dict[str, Any]:
    """The owner starts the trip of a reservation still in time."""
    async with bus.deferred() as out, transaction(db) as conn:
        row = await _lock(conn, principal, booking_id)
        if row["user_id"] != principal.user_id:
            raise forbidden()
        if row["status"] != "reserved":
            raise invalid_transition(row["status"], "start")
        if row["lapsed"]:
            raise reservation_expired()        # the sweeper expires it on its next pass
        before, after = await cars.move(conn, row["car_id"], "in_trip")
        updated = (await conn.execute(update(b).where(b.c.id == booking_id).values(
            status="in_trip", started_at=func.now(), updated_at=func.now(), start_lat=before["lat"],
            start_lon=before["lon"], start_fuel_level=before["fuel_level"]).returning(*b.c))).mappings().one()
        booking = booking_view(updated)
        booking_changed(out, "started", booking)
        car_changed(out, after, before)
    return booking


async def finish(db: AsyncEngine, bus: Bus, principal: Principal, booking_id: int,
                 end: FinishIn) -> dict[str, Any]:
    """End a trip where the car was left: bill it and free the car at its new place and fuel.

    Client operators may finish too, so a trip of a blocked or deleted client can be closed.
    """
    async with bus.deferred() as out, transaction(db) as conn:
        row = await _lock(conn, principal, booking_id)
        if row["user_id"] != principal.user_id and not principal.has(MANAGE_CLIENTS):
            raise forbidden()
        if row["status"] != "in_trip":
            raise invalid_transition(row["status"], "finish")
        now = (await conn.execute(select(func.now()))).scalar_one()      # the transaction's clock
        duration_s = elapsed_seconds(row["started_at"], now)
        updated = (await conn.execute(update(b).where(b.c.id == booking_id).values(
            status="finished", finished_at=now, updated_at=now, duration_s=duration_s,
            cost=trip_cost(duration_s, row["tariff_per_minute"]), end_lat=end.lat, end_lon=end.lon,
            end_fuel_level=end.fuel_level).returning(*b.c))).mappings().one()
        before, after = await cars.move(conn, row["car_id"], "available", lat=end.lat, lon=end.lon,
                                        fuel_level=end.fuel_level)
        booking = booking_view(updated)
        booking_changed(out, "finished", booking)
        car_changed(out, after, before)
    return booking


async def cancel(pool: asyncpg.Pool, bus: Bus, principal: Principal, booking_id: int) -> dict[str, Any]:
    """The owner or an operator cancels a reservation (not a trip under way)."""
    async with bus.deferred() as out:
        row, before, after = await claims.cancel(pool, None if is_operator(principal) else principal.user_id,
                                                 booking_id)
        booking = booking_view(row)
        booking_changed(out, "cancelled", booking)
        car_changed(out, after, before)
    return booking


async def cancel_reservation_of(conn: AsyncConnection, out: Outbox, user_id: int) -> dict[str, Any] | None:
    """Inside the caller's transaction (a client blocked or deleted): cancel the user's reservation."""
    query = select(b).where(b.c.user_id == user_id, b.c.status == "reserved").with_for_update()
    row = (await conn.execute(query)).mappings().one_or_none()
    return await _close(conn, out, row, "cancelled") if row is not None else None


async def expire_due(db: AsyncEngine, bus: Bus, batch: int = 100) -> int:
    """Expire reservations past their time; several instances may run this at once.

    SKIP LOCKED hands each due booking to one sweeper only, and a booking being started or
    cancelled right now is skipped (its own transaction decides); it is seen again next pass.
    """
    async with bus.deferred() as out, transaction(db) as conn:
        rows = (await conn.execute(due_reservations(batch))).mappings().all()
        for row in rows:
            await _close(conn, out, row, "expired")
    return len(rows)


def due_reservations(batch: int) -> Select[Any]:
    """Up to `batch` reservations past their time, locked, skipping those another transaction holds
    (on the partial index bookings_reserved_until_idx: the status is a constant)."""
    return (select(b).where(b.c.status == constant("reserved"), b.c.reserved_until <= func.now())
            .order_by(b.c.reserved_until, b.c.id).limit(batch).with_for_update(skip_locked=True))


async def get_booking(db: AsyncEngine, principal: Principal, booking_id: int) -> dict[str, Any]:
    """One booking its owner or an operator may see; anyone else gets 404."""
    async with read(db) as conn:
        row = (await conn.execute(_visible(select(b), principal).where(b.c.id == booking_id))
               ).mappings().one_or_none()
    if row is None:
        raise not_found()
    return booking_view(row)


Page = tuple[int, list[dict[str, Any]]]          # (count of all matches, this page's rows)


async def list_bookings(db: AsyncEngine, principal: Principal, query: BookingsQuery) -> Page:
    """A page of the bookings `principal` may see, filtered, in id order."""
    found = _visible(select(b), principal)
    if query.status is not None:
        found = found.where(b.c.status == query.status)
    if query.car is not None:
        found = found.where(b.c.car_id == query.car)
    if query.user is not None:
        found = found.where(b.c.user_id == query.user)
    async with read(db) as conn:
        count, rows = await fetch_page(conn, found, b.c.id, limit=query.limit, offset=query.offset)
    return count, [booking_view(row) for row in rows]


async def active_by_car(conn: AsyncConnection, car_ids: list[int]) -> dict[int, RowMapping]:
    """The active booking of each of `car_ids` that has one."""
    if not car_ids:
        return {}
    rows = (await conn.execute(select(b).where(b.c.car_id.in_(car_ids), b.c.status.in_(constants(ACTIVE))))).mappings()
    return {row["car_id"]: row for row in rows}


async def car_is_booked(conn: AsyncConnection, car_id: int) -> bool:
    """True while the car has an active booking (operators may not change its state then)."""
    return bool(await active_by_car(conn, [car_id]))
