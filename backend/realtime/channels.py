"""The channel registry: domains declare namespaces and who may subscribe (SPEC §8.3).

A channel is named '<namespace>' or '<namespace>:<rest>'; realtime itself knows nothing of
cars, chats or orders — it asks the namespace.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from backend.principal import Permission, Principal
from backend.realtime.const import UNKNOWN_CHANNEL

Authorize = Callable[[AsyncEngine, Principal | None, str], Awaitable[bool]]
Snapshot = Callable[[AsyncEngine, str], Awaitable[list[dict[str, Any]]]]


class FrameError(Exception):
    """A recoverable protocol error: answered with an error frame, the socket stays open."""

    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Namespace:
    """Rules for every channel named '<name>' or '<name>:<rest>'."""

    name: str
    authorize: Authorize
    snapshot: Snapshot | None = None


class Channels:
    """Every declared namespace, looked up by a channel's name."""

    def __init__(self) -> None:
        self._by_name: dict[str, Namespace] = {}

    def add(self, namespace: Namespace) -> None:
        """Declare a namespace (each domain's setup() does, before the app starts)."""
        if namespace.name in self._by_name:
            raise ValueError(f"channel namespace {namespace.name!r} declared twice")
        self._by_name[namespace.name] = namespace

    def lookup(self, channel: str) -> tuple[Namespace, str]:
        """The namespace of `channel` and the rest of its name; FrameError for unknown ones."""
        name, _, rest = channel.partition(":")
        namespace = self._by_name.get(name)
        if namespace is None or len(channel) > 200:
            raise FrameError(UNKNOWN_CHANNEL)
        return namespace, rest

    def knows(self, channel: str) -> bool:
        """True when `channel` belongs to a declared namespace."""
        try:
            self.lookup(channel)
        except FrameError:
            return False
        return True


def own_channel(principal: Principal | None) -> str | None:
    """The identity channel of `principal`, or None for an anonymous socket.

    Every authenticated socket joins it automatically: user:{id} for a user, app:{id} for a CallUp
    app's token connection; the hub finds an identity's sockets there for control orders.
    """
    if principal is None:
        return None
    if principal.user_id is not None:
        return f"user:{principal.user_id}"
    if principal.app_id is not None:
        return f"app:{principal.app_id}"
    return None


async def only_that_user(db: AsyncEngine, principal: Principal | None, rest: str) -> bool:
    """user:{id} is readable by that user only."""
    return principal is not None and principal.user_id is not None and rest == str(principal.user_id)


async def only_that_app(db: AsyncEngine, principal: Principal | None, rest: str) -> bool:
    """app:{id} is readable by that app's token connection only."""
    return principal is not None and principal.app_id is not None and rest == str(principal.app_id)


async def dashboard_viewers(db: AsyncEngine, principal: Principal | None, rest: str) -> bool:
    """dashboard: operators with can_view_dashboard (several domains publish there)."""
    return rest == "" and principal is not None and principal.has(Permission.VIEW_DASHBOARD)
