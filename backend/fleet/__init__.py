"""Fleet waybills (SPEC §5): cars, norms, odometer/fuel snapshots, waybills and their records."""

from __future__ import annotations

from aiohttp import web

from backend import keys
from backend.fleet.hooks import PassengerCarHooks
from backend.fleet.kinds import KINDS
from backend.fleet.records import HotWriters
from backend.fleet.resources import resources


def setup(app: web.Application) -> None:
    """Register the ten fleet collections (five per vehicle kind) and the passenger cars' hooks,
    which domains set up after fleet (car sharing) fill in."""
    car_hooks = app[keys.PASSENGER_CAR_HOOKS] = PassengerCarHooks()
    writers = HotWriters()
    for kind in KINDS:
        for resource in resources(kind, car_hooks, writers):
            resource.register(app)
