"""HTTP handlers of the car-sharing surface: parse, make one domain call, shape the answer."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from backend import keys
from backend.api.access import current_user
from backend.api.crud import item_id_of
from backend.api.pagination import page_body
from backend.api.responses import respond
from backend.api.validation import read_json, read_query
from backend.db import read
from backend.sharing import bookings, operator
from backend.sharing.cars import available_cars
from backend.sharing.free_cars import cached_response
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


async def list_public_cars(request: web.Request) -> web.Response:
    """GET /api/cars: free cars for anyone, no auth (SPEC §4.2)."""
    query = read_query(request, PublicCarsQuery)
    window = query.window()

    async def load() -> list[dict[str, Any]]:
        async with read(request.app[keys.DB], lag_ok=True) as conn:
            return await available_cars(conn, window)

    if window is None:          # the whole list: encoded once per change (backend.sharing.free_cars)
        return cached_response(await request.app[keys.FREE_CARS].body(load))
    return respond(await load())


# ---- bookings ------------------------------------------------------------------------------------

async def create_booking(request: web.Request) -> web.Response:
    """POST /api/bookings: reserve a car for the caller."""
    principal = current_user(request)
    data = await read_json(request, BookingIn)
    app = request.app
    booking = await bookings.reserve(app[keys.HOT_DB], app[keys.BUS], principal, data.car,
                                     app[keys.CONFIG].reservation_ttl)
    return respond(booking, status=201)


async def list_bookings(request: web.Request) -> web.Response:
    """GET /api/bookings: the caller's bookings; operators see all."""
    principal = current_user(request)
    query = read_query(request, BookingsQuery)
    count, found = await bookings.list_bookings(request.app[keys.DB], principal, query)
    return respond(page_body(request, count, query, found))


async def get_booking(request: web.Request) -> web.Response:
    """GET /api/bookings/{id}."""
    principal = current_user(request)
    return respond(await bookings.get_booking(request.app[keys.DB], principal, item_id_of(request)))


async def start_booking(request: web.Request) -> web.Response:
    """POST /api/bookings/{id}/start: the trip begins."""
    principal = current_user(request)
    app = request.app
    return respond(await bookings.start(app[keys.DB], app[keys.BUS], principal, item_id_of(request)))


async def finish_booking(request: web.Request) -> web.Response:
    """POST /api/bookings/{id}/finish: the trip ends where the car was left."""
    principal = current_user(request)
    booking_id = item_id_of(request)
    end = await read_json(request, FinishIn)
    app = request.app
    return respond(await bookings.finish(app[keys.DB], app[keys.BUS], principal, booking_id, end))


async def cancel_booking(request: web.Request) -> web.Response:
    """POST /api/bookings/{id}/cancel: a reservation is given up."""
    principal = current_user(request)
    app = request.app
    return respond(await bookings.cancel(app[keys.HOT_DB], app[keys.BUS], principal, item_id_of(request)))


# ---- operators -----------------------------------------------------------------------------------

async def list_operator_cars(request: web.Request) -> web.Response:
    """GET /api/operator/cars: every car with its booking and client."""
    query = read_query(request, OperatorCarsQuery)
    count, found = await operator.operator_cars(request.app[keys.DB], current_user(request), query)
    return respond(page_body(request, count, query, found))


async def set_car_state(request: web.Request) -> web.Response:
    """POST /api/operator/cars/{id}/state: maintenance or available."""
    car_id = item_id_of(request)
    data = await read_json(request, CarStateIn)
    app = request.app
    return respond(await operator.set_car_state(app[keys.DB], app[keys.BUS], current_user(request), car_id,
                                              data.state))


async def list_clients(request: web.Request) -> web.Response:
    """GET /api/clients."""
    query = read_query(request, ClientsQuery)
    count, found = await operator.list_clients(request.app[keys.DB], query)
    return respond(page_body(request, count, query, found))


async def approve_client(request: web.Request) -> web.Response:
    """POST /api/clients/{id}/approve."""
    return respond(await operator.change_client(request.app, item_id_of(request), "approve"))


async def block_client(request: web.Request) -> web.Response:
    """POST /api/clients/{id}/block {"reason"}."""
    user_id = item_id_of(request)
    data = await read_json(request, BlockIn)
    return respond(await operator.change_client(request.app, user_id, "block", data.reason))


async def unblock_client(request: web.Request) -> web.Response:
    """POST /api/clients/{id}/unblock."""
    return respond(await operator.change_client(request.app, item_id_of(request), "unblock"))


async def delete_client(request: web.Request) -> web.Response:
    """DELETE /api/clients/{id}: soft delete."""
    await operator.delete_client(request.app, item_id_of(request))
    return web.Response(status=204)
