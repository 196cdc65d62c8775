"""HTTP handlers of the car-sharing surface."""

from __future__ import annotations

from aiohttp import web

from backend import keys
from backend.api.validation import read_query
from backend.db import read
from backend.jsonutil import dumps
from backend.sharing.cars import available_cars
from backend.sharing.schemas import PublicCarsQuery


async def list_public_cars(request: web.Request) -> web.Response:
    """GET /api/cars: free cars for anyone, no auth (SPEC §4.2)."""
    query = read_query(request, PublicCarsQuery)
    async with read(request.app[keys.DB]) as conn:
        found = await available_cars(conn, query.window())
    return web.json_response(found, dumps=dumps)
