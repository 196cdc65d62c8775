"""Car sharing (SPEC §4): public cars and the `cars` channel, bookings, operators, clients."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from backend import keys
from backend.api.routing import USER, Handler, permission, route
from backend.auth.schemas import profile_body
from backend.realtime.bus import Outbox
from backend.realtime.channels import Namespace
from backend.realtime.names import DASHBOARD as DASHBOARD_CHANNEL
from backend.sharing import areas, bookings
from backend.sharing import handlers as h
from backend.sharing.const import BOOK, CARS, DASHBOARD, MANAGE_CLIENTS, MANAGE_FLEET, car_has_active_booking
from backend.sharing.events import publish_car_change
from backend.sharing.free_cars import free_cars_ctx
from backend.sharing.schemas import (
    BlockIn,
    BookingIn,
    BookingOut,
    BookingPage,
    BookingsQuery,
    CarStateIn,
    ClientOut,
    ClientPage,
    ClientsQuery,
    FinishIn,
    OperatorCarOut,
    OperatorCarPage,
    OperatorCarsQuery,
    PublicCarList,
    PublicCarsQuery,
)
from backend.sharing.sweeper import sweeper_ctx

BOOKING = r"/api/bookings/{id:\d+}/"
CLIENT_MANAGERS = permission(MANAGE_CLIENTS)
CLIENT = r"/api/clients/{id:\d+}/"


async def refuse_booked_car(conn: AsyncConnection, car_id: int) -> None:
    """A passenger car is also a car-sharing car: one in a booking cannot be deleted (SPEC §4.3)."""
    if await bookings.car_is_booked(conn, car_id):
        raise car_has_active_booking()


async def release_user(conn: AsyncConnection, out: Outbox, user_id: int) -> None:
    """A blocked or deleted user's reservation is cancelled and its car freed (SPEC §4.4)."""
    await bookings.cancel_reservation_of(conn, out, user_id)


def announce_client(out: Outbox, row: Mapping[str, Any]) -> None:
    """Operators see every self-registration on `dashboard` (SPEC §4.5), whichever surface it came by."""
    out.add(DASHBOARD_CHANNEL, "client.registered", profile_body(row))


def setup(app: web.Application) -> None:
    """Declare the `cars` channels, the routes, the reservation sweeper and sharing's reactions to
    fleet's passenger cars and auth's users."""
    # `cars` (the whole city) and `cars:{tile}` (one area, SPEC §13.3) are one namespace.
    app[keys.CHANNELS].add(Namespace(CARS, authorize=areas.anyone, snapshot=areas.snapshot,
                                     rest=areas.TILE_REST))
    car_hooks = app[keys.PASSENGER_CAR_HOOKS]
    car_hooks.delete_guards.append(refuse_booked_car)
    car_hooks.changed.append(publish_car_change)
    lifecycle = app[keys.USER_LIFECYCLE]
    lifecycle.on_ended.append(release_user)
    lifecycle.on_registered.append(announce_client)
    # Appended after the DB, Redis and bus contexts of create_app: opened after them, closed before.
    app.cleanup_ctx.append(sweeper_ctx)
    app.cleanup_ctx.append(free_cars_ctx)   # needs the bus and the hub

    def add(method: str, path: str, handler: Handler, summary: str, **doc: Any) -> None:
        route(app, method, path, handler, summary=summary, tag="sharing", slash_optional=True, **doc)

    route(app, "GET", "/api/cars", h.list_public_cars, summary="Free cars (public, no auth)", tag="sharing",
          query=PublicCarsQuery, response=PublicCarList)
    add("POST", "/api/bookings/", h.create_booking, "Reserve a car", body=BookingIn, response=BookingOut,
        status=201, auth=permission(BOOK), responses=(409,))
    add("GET", "/api/bookings/", h.list_bookings, "Own bookings (operators: all)", query=BookingsQuery,
        response=BookingPage, auth=USER)
    add("GET", BOOKING, h.get_booking, "One booking", response=BookingOut, auth=USER)
    add("POST", BOOKING + "start/", h.start_booking, "Start the trip", response=BookingOut, auth=USER,
        responses=(409,))
    add("POST", BOOKING + "finish/", h.finish_booking, "Finish the trip", body=FinishIn, response=BookingOut,
        auth=USER, responses=(409,))
    add("POST", BOOKING + "cancel/", h.cancel_booking, "Cancel a reservation", response=BookingOut, auth=USER,
        responses=(409,))
    add("GET", "/api/operator/cars/", h.list_operator_cars, "Every car with its booking and client",
        query=OperatorCarsQuery, response=OperatorCarPage, auth=permission(MANAGE_FLEET, DASHBOARD))
    add("POST", r"/api/operator/cars/{id:\d+}/state/", h.set_car_state, "Maintenance or available",
        body=CarStateIn, response=OperatorCarOut, auth=permission(MANAGE_FLEET), responses=(409,))
    add("GET", "/api/clients/", h.list_clients, "Clients by status and role", query=ClientsQuery,
        response=ClientPage, auth=CLIENT_MANAGERS)
    add("POST", CLIENT + "approve/", h.approve_client, "Approve a client", response=ClientOut,
        auth=CLIENT_MANAGERS)
    add("POST", CLIENT + "block/", h.block_client, "Block a client", body=BlockIn, response=ClientOut,
        auth=CLIENT_MANAGERS)
    add("POST", CLIENT + "unblock/", h.unblock_client, "Unblock a client", response=ClientOut,
        auth=CLIENT_MANAGERS)
    add("DELETE", CLIENT, h.delete_client, "Delete a client (soft)", status=204, auth=CLIENT_MANAGERS)
