"""The hot half of bookings (SPEC §4.3): reserve and cancel on the raw asyncpg pool (issue 11).

A reservation is one statement: lock the client's row FOR SHARE, claim the car with one conditional
UPDATE (free, client approved, no active booking of the user) and insert the booking from what it
returned. A cancel is one UPDATE of the booking and one of its car, in one transaction. The
statements are SQLAlchemy Core, compiled once for asyncpg, whose connections keep them prepared:
through SQLAlchemy the same work took six round trips and ~4–5 ms of CPU per request (issue 11).

Same rules and lock order as backend/sharing/bookings.py (user → booking → car): the client's
share lock orders a reservation against a concurrent block, and the partial unique indexes of
sql/007 settle the races the locks leave open (their violations name the index).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
from sqlalchemy import Interval, bindparam, case, exists, func, insert, literal, select, true, update

from backend.auth.clients import locked_client_status
from backend.db import Statement, compiled, constants, wrote
from backend.errors import ApiError, not_found
from backend.sharing.cars import cars, free  # fleet's passenger_cars, through sharing's one gateway to it
from backend.sharing.const import (
    active_booking_exists,
    car_not_available,
    client_not_approved,
    invalid_transition,
    unknown_car,
)
from backend.sharing.tables import ACTIVE, bookings

b = bookings
Row = dict[str, Any]


def _reserve() -> Statement:
    user_id, car_id = bindparam("user_id"), bindparam("car_id")
    client = locked_client_status(user_id)
    status = select(client.c.client_status).scalar_subquery()
    # Constants, not parameters: the check then reads the partial index bookings_active_user_key.
    active = exists(select(b.c.id).where(b.c.user_id == user_id, b.c.status.in_(constants(ACTIVE))))
    taken = (update(cars).where(cars.c.id == car_id, free(), status == "approved", ~active)
             .values(state="reserved", state_changed_at=func.now(), updated_at=func.now())
             .returning(*cars.c).cte("taken"))
    booked = (insert(b).from_select(
        ["car_id", "user_id", "status", "tariff_per_minute", "reserved_until"],
        select(taken.c.id, user_id, literal("reserved"), func.coalesce(taken.c.tariff_per_minute, 0),
               func.now() + bindparam("ttl", type_=Interval())))
        .returning(*b.c).cte("booked"))
    one = select(literal(1).label("one")).subquery("one")       # a row even when nothing was taken
    return compiled(
        select(status.label("client_status"), active.label("has_active"),
               *[column.label("car_" + column.name) for column in taken.c],
               *[column.label("booking_" + column.name) for column in booked.c])
        .select_from(one.outerjoin(taken, true()).outerjoin(booked, true())))


RESERVE = _reserve()
CAR_EXISTS = compiled(select(cars.c.id).where(cars.c.id == bindparam("car_id")))


def _labels(prefix: str, table: Any) -> tuple[tuple[str, str], ...]:
    """(result column, row key) of `table`'s columns as the statements label them (`car_` + name)."""
    return tuple((prefix + column.name, column.name) for column in table.c)


BOOKING_LABELS, CAR_LABELS = _labels("booking_", b), _labels("car_", cars)


def _split(row: asyncpg.Record, labels: tuple[tuple[str, str], ...]) -> Row:
    return {name: row[label] for label, name in labels}


async def reserve(pool: asyncpg.Pool, user_id: int, car_id: int, ttl: float) -> tuple[Row, Row]:
    """Reserve `car_id` for `user_id` for `ttl` seconds; returns (booking row, car row after)."""
    wrote()                                         # this request's later reads stay on the primary
    async with pool.acquire() as conn:
        try:
            row = await conn.fetchrow(RESERVE.sql, *RESERVE.args(
                user_id=user_id, car_id=car_id, ttl=dt.timedelta(seconds=ttl)))
        except asyncpg.UniqueViolationError as exc:
            raise _conflict_of(exc) from None
        assert row is not None                      # the `one` row is always there
        # The refusals in the order bookings.reserve always checked them.
        if row["client_status"] != "approved":
            raise client_not_approved()
        if row["has_active"]:
            raise active_booking_exists()
        if row["booking_id"] is None:
            found = await conn.fetchval(CAR_EXISTS.sql, *CAR_EXISTS.args(car_id=car_id))
            raise car_not_available() if found is not None else unknown_car(car_id)
    return _split(row, BOOKING_LABELS), _split(row, CAR_LABELS)


def _conflict_of(exc: asyncpg.UniqueViolationError) -> ApiError | Exception:
    """A race the row locks could not settle, caught by a partial unique index (sql/007)."""
    if exc.constraint_name == "bookings_active_user_key":
        return active_booking_exists()
    if exc.constraint_name == "bookings_active_car_key":
        return car_not_available()
    return exc


def _cancel(own: bool) -> Statement:
    """Close the reservation and free its car in one statement: no BEGIN/COMMIT round trips, and
    still all or nothing. The booking's UPDATE takes its row lock, then `before` locks the car:
    the lock order of bookings.py (booking → car)."""
    query = (update(b).where(b.c.id == bindparam("booking_id"), b.c.status == "reserved")
             .values(status="cancelled", updated_at=func.now()))
    if own:
        query = query.where(b.c.user_id == bindparam("user_id"))
    closed = query.returning(*b.c).cte("closed")
    before = (select(cars.c.id, cars.c.state).where(cars.c.id == select(closed.c.car_id).scalar_subquery())
              .with_for_update().cte("before"))
    freed = (update(cars).where(cars.c.id == before.c.id)
             .values(state="available", updated_at=func.now(),
                     state_changed_at=case((before.c.state != "available", func.now()),
                                           else_=cars.c.state_changed_at))
             .returning(*cars.c, before.c.state.label("before_state")).cte("freed"))
    one = select(literal(1).label("one")).subquery("one")       # a row even when nothing was closed
    return compiled(
        select(*[column.label("booking_" + column.name) for column in closed.c],
               *[column.label("car_" + column.name) for column in freed.c])
        .select_from(one.outerjoin(closed, true()).outerjoin(freed, true())))


def _status(own: bool) -> Statement:
    query = select(b.c.status).where(b.c.id == bindparam("booking_id"))
    return compiled(query.where(b.c.user_id == bindparam("user_id")) if own else query)


CANCEL_OWN, CANCEL_ANY = _cancel(own=True), _cancel(own=False)
STATUS_OWN, STATUS_ANY = _status(own=True), _status(own=False)


async def cancel(pool: asyncpg.Pool, user_id: int | None, booking_id: int) -> tuple[Row, Row, Row]:
    """Cancel a reservation the caller may see (`user_id` None: an operator sees all); returns
    (booking row, car row before, car row after). 404 if unseen, 409 if not a reservation."""
    own = user_id is not None
    values = {"booking_id": booking_id, **({"user_id": user_id} if own else {})}
    statement = CANCEL_OWN if own else CANCEL_ANY
    wrote()                                         # this request's later reads stay on the primary
    async with pool.acquire() as conn:
        row = await conn.fetchrow(statement.sql, *statement.args(**values))
        assert row is not None                      # the `one` row is always there
        if row["booking_id"] is None:
            status = STATUS_OWN if own else STATUS_ANY
            found = await conn.fetchval(status.sql, *status.args(**values))
            raise not_found() if found is None else invalid_transition(found, "cancel")
    booking, after = _split(row, BOOKING_LABELS), _split(row, CAR_LABELS)
    # Only the state changed: the row before is the row after with its old state.
    return booking, {**after, "state": row["car_before_state"]}, after
