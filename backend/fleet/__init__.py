"""Fleet waybills (SPEC §5): cars, norms, odometer/fuel snapshots, waybills and their records."""

from __future__ import annotations

from aiohttp import web

from backend.fleet.kinds import KINDS
from backend.fleet.resources import resources


def setup(app: web.Application) -> None:
    """Register the ten fleet collections (five per vehicle kind)."""
    for kind in KINDS:
        for resource in resources(kind):
            resource.register(app)
