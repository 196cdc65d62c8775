"""HTTP handlers of the car-sharing surface: parse, make one domain call, shape the answer."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from backend import keys
from backend.api.access import current_user, requires
from backend.api.crud import item_id_of, paginated
from backend.api.validation import read_json, read_query
from backend.db import read
from backend.jsonutil import dumps
from backend.sharing import bookings, operator
from backend.sharing.cars import available_cars
from backend.sharing.const import DASHBOARD, MANAGE_CLIENTS, MANAGE_FLEET
from backend.sharing.schemas import (
    BlockIn,
    BookingIn,
    BookingsQuery,
    CarStateIn,
    ClientsQuery,
    FinishIn,
    OperatorCarsQuery,
    PublicCarsQuery,
)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=dumps)


async def list_public_cars(request: web.Request) -> web.Response:
    """GET /api/cars: free cars for anyone, no auth (SPEC §4.2)."""
    query = read_query(request, PublicCarsQuery)
    async with read(request.app[keys.DB]) as conn:
        found = await available_cars(conn, query.window())
    return _json(found)


# ---- bookings ------------------------------------------------------------------------------------

async def create_booking(request: web.Request) -> web.Response:
    """POST /api/bookings: reserve a car for the caller."""
    principal = current_user(request)
    data = await read_json(request, BookingIn)
    app = request.app
    booking = await bookings.reserve(app[keys.DB], app[keys.BUS], principal, data.car,
                                     app[keys.CONFIG].reservation_ttl)
    return _json(booking, status=201)


async def list_bookings(request: web.Request) -> web.Response:
    """GET /api/bookings: the caller's bookings; operators see all."""
    principal = current_user(request)
    query = read_query(request, BookingsQuery)
    count, found = await bookings.list_bookings(request.app[keys.DB], principal, query)
    return _json(paginated(request, count, query.limit, query.offset, found))


async def get_booking(request: web.Request) -> web.Response:
    """GET /api/bookings/{id}."""
    principal = current_user(request)
    return _json(await bookings.get_booking(request.app[keys.DB], principal, item_id_of(request)))


async def start_booking(request: web.Request) -> web.Response:
    """POST /api/bookings/{id}/start: the trip begins."""
    principal = current_user(request)
    app = request.app
    return _json(await bookings.start(app[keys.DB], app[keys.BUS], principal, item_id_of(request)))


async def finish_booking(request: web.Request) -> web.Response:
    """POST /api/bookings/{id}/finish: the trip ends where the car was left."""
    principal = current_user(request)
    booking_id = item_id_of(request)
    end = await read_json(request, FinishIn)
    app = request.app
    return _json(await bookings.finish(app[keys.DB], app[keys.BUS], principal, booking_id, end))


async def cancel_booking(request: web.Request) -> web.Response:
    """POST /api/bookings/{id}/cancel: a reservation is given up."""
    principal = current_user(request)
    app = request.app
    return _json(await bookings.cancel(app[keys.DB], app[keys.BUS], principal, item_id_of(request)))


# ---- operators -----------------------------------------------------------------------------------

@requires(MANAGE_FLEET, DASHBOARD)
async def list_operator_cars(request: web.Request) -> web.Response:
    """GET /api/operator/cars: every car with its booking and client."""
    query = read_query(request, OperatorCarsQuery)
    count, found = await operator.operator_cars(request.app[keys.DB], current_user(request), query)
    return _json(paginated(request, count, query.limit, query.offset, found))


@requires(MANAGE_FLEET)
async def set_car_state(request: web.Request) -> web.Response:
    """POST /api/operator/cars/{id}/state: maintenance or available."""
    car_id = item_id_of(request)
    data = await read_json(request, CarStateIn)
    app = request.app
    return _json(await operator.set_car_state(app[keys.DB], app[keys.BUS], current_user(request), car_id,
                                              data.state))


@requires(MANAGE_CLIENTS)
async def list_clients(request: web.Request) -> web.Response:
    """GET /api/clients."""
    query = read_query(request, ClientsQuery)
    count, found = await operator.list_clients(request.app[keys.DB], query)
    return _json(paginated(request, count, query.limit, query.offset, found))


@requires(MANAGE_CLIENTS)
async def approve_client(request: web.Request) -> web.Response:
    """POST /api/clients/{id}/approve."""
    return _json(await operator.change_client(request.app, item_id_of(request), "approve"))


@requires(MANAGE_CLIENTS)
async def block_client(request: web.Request) -> web.Response:
    """POST /api/clients/{id}/block {"reason"}."""
    user_id = item_id_of(request)
    data = await read_json(request, BlockIn)
    return _json(await operator.change_client(request.app, user_id, "block", data.reason))


@requires(MANAGE_CLIENTS)
async def unblock_client(request: web.Request) -> web.Response:
    """POST /api/clients/{id}/unblock."""
    return _json(await operator.change_client(request.app, item_id_of(request), "unblock"))


@requires(MANAGE_CLIENTS)
async def delete_client(request: web.Request) -> web.Response:
    """DELETE /api/clients/{id}: soft delete."""
    await operator.delete_client(request.app, item_id_of(request))
    return web.Response(status=204)
