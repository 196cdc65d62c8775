"""Car sharing (SPEC §4): the public car list and the public `cars` channel with its snapshot."""

from __future__ import annotations

from aiohttp import web

from backend import keys
from backend.api.routing import route
from backend.realtime.channels import Namespace
from backend.sharing.cars import anyone, cars_snapshot
from backend.sharing.handlers import list_public_cars
from backend.sharing.schemas import PublicCarList, PublicCarsQuery


def setup(app: web.Application) -> None:
    """Declare the `cars` channel and the public car routes."""
    app[keys.CHANNELS].add(Namespace("cars", authorize=anyone, snapshot=cars_snapshot))
    route(app, "GET", "/api/cars", list_public_cars, summary="Free cars (public, no auth)", tag="sharing",
          query=PublicCarsQuery, response=PublicCarList)
