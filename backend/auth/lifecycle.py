"""What other domains learn of a user's life: registered, blocked or deleted.

Auth never imports the domains that care (car sharing frees a reservation, announces a new
client); they register their reactions here in their setup(), the way they declare channels.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend.db import transaction
from backend.realtime.bus import Bus, Outbox

# Queues the events of a self-registration (the new user's row); runs after the insert committed.
OnRegistered = Callable[[Outbox, Mapping[str, Any]], None]
# Releases what a user held, inside the transaction that ends them (blocked or deleted).
OnEnded = Callable[[AsyncConnection, Outbox, int], Awaitable[None]]


@dataclass(slots=True)
class UserLifecycle:
    """The reactions every domain registered, run the same way by every path that causes them."""

    on_registered: list[OnRegistered] = field(default_factory=list)
    on_ended: list[OnEnded] = field(default_factory=list)

    async def registered(self, bus: Bus, row: Mapping[str, Any]) -> None:
        """A user signed themselves up (/profile/signup, POST /users): publish what domains ask."""
        async with bus.deferred() as out:
            for hook in self.on_registered:
                hook(out, row)

    async def ended_in(self, conn: AsyncConnection, out: Outbox, user_id: int) -> None:
        """Inside the caller's transaction: the user was blocked or deleted."""
        for hook in self.on_ended:
            await hook(conn, out, user_id)

    async def ended(self, db: AsyncEngine, bus: Bus, user_id: int) -> None:
        """The user was blocked or deleted by a write that has committed: release in a transaction of its own."""
        async with bus.deferred() as out, transaction(db) as conn:
            await self.ended_in(conn, out, user_id)
