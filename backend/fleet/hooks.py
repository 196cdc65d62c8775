"""What other domains may attach to fleet's cars without fleet importing them.

Car sharing keeps its own rules about passenger cars (a booked car cannot be deleted; a change of
a shared car is news on `cars` and `dashboard`); it registers them here in its setup().
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from backend.realtime.bus import Bus

# Raises an ApiError when the passenger car may not be deleted now (inside the delete's transaction).
DeleteGuard = Callable[[AsyncConnection, int], Awaitable[None]]
# A passenger car was created, edited or deleted and the write committed: `after`, and `before` if any.
CarChanged = Callable[[Bus, Mapping[str, Any], Mapping[str, Any] | None], Awaitable[None]]


@dataclass(slots=True)
class PassengerCarHooks:
    """Registered reactions to passenger cars' writes through /api/passenger-cars/."""

    delete_guards: list[DeleteGuard] = field(default_factory=list)
    changed: list[CarChanged] = field(default_factory=list)

    async def check_delete(self, conn: AsyncConnection, car_id: int) -> None:
        for guard in self.delete_guards:
            await guard(conn, car_id)

    async def announce(self, bus: Bus, after: Mapping[str, Any], before: Mapping[str, Any] | None) -> None:
        for hook in self.changed:
            await hook(bus, after, before)
