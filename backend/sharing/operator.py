"""The operators' side of car sharing: every car with its booking and client (SPEC §4.2, §11.15),
the car state switch, and client management (SPEC §4.4, §11.13)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend import keys
from backend.api.pagination import fetch_page
from backend.auth import clients
from backend.db import read, transaction
from backend.errors import field_error, not_found
from backend.fleet.tables import passenger_cars as car_table
from backend.principal import Principal
from backend.realtime.bus import Bus
from backend.realtime.names import DASHBOARD as DASHBOARD_CHANNEL
from backend.sharing import bookings, cars
from backend.sharing.bookings import Page
from backend.sharing.const import DASHBOARD, MANAGE_CLIENTS, car_has_active_booking
from backend.sharing.events import car_changed
from backend.sharing.schemas import (
    ClientsQuery,
    OperatorCarOut,
    OperatorCarsQuery,
    booking_fields,
    client_view,
)

# Which status each action leads to; None keeps the current one (unblock of a user not blocked).
TARGETS: dict[str, str | None] = {"approve": "approved", "block": "blocked", "unblock": None}
EVENTS = {"approve": "approved", "block": "blocked", "unblock": "unblocked"}


def sees_phones(principal: Principal) -> bool:
    """Client operators and dashboard viewers see the client's phone (SPEC §11.15, §2.1)."""
    return principal.has_any(MANAGE_CLIENTS, DASHBOARD)


async def _views(conn: AsyncConnection, principal: Principal, rows: list[Any]) -> list[dict[str, Any]]:
    active = await bookings.active_by_car(conn, [row["id"] for row in rows])
    people = await clients.contacts(conn, (booking["user_id"] for booking in active.values()))
    phones = sees_phones(principal)
    views = []
    for row in rows:
        booking = active.get(row["id"])
        person = dict(people[booking["user_id"]]) if booking is not None else None
        if person is not None and not phones:
            person["phone"] = None
        views.append(OperatorCarOut.model_validate({
            **row, "booking": booking_fields(booking) if booking is not None else None, "client": person,
        }).model_dump(mode="json"))
    return views


async def operator_cars(db: AsyncEngine, principal: Principal, query: OperatorCarsQuery) -> Page:
    """A page of live cars in id order, each with its active booking and client."""
    found = select(car_table).where(car_table.c.deleted_at.is_(None))
    if query.state is not None:
        found = found.where(car_table.c.state == query.state)
    async with read(db) as conn:
        count, rows = await fetch_page(conn, found, car_table.c.id, limit=query.limit, offset=query.offset)
        return count, await _views(conn, principal, list(rows))


async def set_car_state(db: AsyncEngine, bus: Bus, principal: Principal, car_id: int,
                        state: str) -> dict[str, Any]:
    """Send a car to maintenance or back; refused while a booking holds it."""
    async with bus.deferred() as out, transaction(db) as conn:
        # Car first, then a plain read of its bookings: a reservation racing us waits on this lock
        # and then finds the car no longer free (claims.reserve), so no booking slips in between.
        car = await cars.lock(conn, car_id)
        if await bookings.car_is_booked(conn, car_id):
            raise car_has_active_booking()
        if car["state"] != state:
            before, car = await cars.move(conn, car_id, state)
            car_changed(out, car, before)
        return (await _views(conn, principal, [car]))[0]


# ---- clients -------------------------------------------------------------------------------------

async def list_clients(db: AsyncEngine, query: ClientsQuery) -> Page:
    """A page of users of a role (default `client`), by client status when asked."""
    async with read(db) as conn:
        role = await clients.role_id(conn, query.role)
        if role is None:
            raise field_error("role", f"Роль «{query.role}» не существует.")
        count, rows = await clients.list_clients(conn, role=role, status=query.status, limit=query.limit,
                                                 offset=query.offset)
    return count, [client_view(row) for row in rows]


async def change_client(app: web.Application, user_id: int, action: str,
                        reason: str | None = None) -> dict[str, Any]:
    """Approve, block or unblock a user; blocking cancels their reservation and signs them out."""
    bus = app[keys.BUS]
    async with bus.deferred() as out, transaction(app[keys.DB]) as conn:
        row = await clients.lock_client(conn, user_id)
        if row is None:
            raise not_found()
        target = TARGETS[action] or ("approved" if row["client_status"] == "blocked" else row["client_status"])
        updated = await clients.set_client_status(conn, user_id, target, reason)
        if action == "block":
            await app[keys.USER_LIFECYCLE].ended_in(conn, out, user_id)
        view = client_view(updated)
        if updated != row:
            out.add(DASHBOARD_CHANNEL, f"client.{EVENTS[action]}", view)
    if action == "block":
        # After the commit: from now on the auth middleware refuses the user anyway (SPEC §2.1);
        # this also ends their refresh tokens and cookie sessions and closes their sockets.
        await app[keys.REVOCATIONS].revoke_everything(user_id)
    elif updated["client_status"] != row["client_status"]:
        # Approved or unblocked: open sockets re-check what they are subscribed to.
        await app[keys.REVOCATIONS].rights_changed(user_id)
    return view


async def delete_client(app: web.Application, user_id: int) -> None:
    """Soft-delete a user: cancel their reservation, sign them out everywhere."""
    async with app[keys.BUS].deferred() as out, transaction(app[keys.DB]) as conn:
        if await clients.lock_client(conn, user_id) is None:
            raise not_found()
        await app[keys.USER_LIFECYCLE].ended_in(conn, out, user_id)
        out.add(DASHBOARD_CHANNEL, "client.deleted", client_view(await clients.soft_delete_client(conn, user_id)))
    await app[keys.REVOCATIONS].revoke_everything(user_id)
