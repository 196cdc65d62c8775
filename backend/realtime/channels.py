"""The channel registry: domains declare namespaces and who may subscribe (SPEC §8.3).

A channel is named '<namespace>' or '<namespace>:<rest>'; realtime itself knows nothing of
cars, chats or orders — it asks the namespace.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from backend.principal import Permission, Principal
from backend.realtime.const import PRESENCE_JOINED, PRESENCE_LEFT, UNKNOWN_CHANNEL

Authorize = Callable[[AsyncEngine, Principal | None, str], Awaitable[bool]]
Snapshot = Callable[[AsyncEngine, str], Awaitable[list[dict[str, Any]]]]

# Shapes of '<rest>' in '<namespace>:<rest>' (a Namespace takes none unless it declares one).
INT_ID = re.compile(r"[1-9][0-9]{0,18}")
ANY_REST = re.compile(r"[^\s:]{0,150}")      # any one word, or none (the bare name too)
MAX_CHANNEL = 200


class FrameError(Exception):
    """A recoverable protocol error: answered with an error frame, the socket stays open."""

    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Namespace:
    """Rules for every channel named '<name>' or '<name>:<rest>'.

    `rest` is the shape of '<rest>' (None: only the bare name exists) — publish and subscribe judge
    a channel name by it alike. `stream` gives every event an offset and keeps a bounded history
    (SPEC §12.1); False is the plain fan-out of §8, for feeds nobody recovers. `ephemeral` events
    (typing) get no offset and are never kept. `presence` tracks who is subscribed (§12.4).
    """

    name: str
    authorize: Authorize
    snapshot: Snapshot | None = None
    rest: re.Pattern[str] | str | None = None
    stream: bool = True
    ephemeral: frozenset[str] = frozenset()
    presence: bool = False

    def accepts(self, rest: str | None) -> bool:
        """True when '<rest>' (None: the bare name) has this namespace's shape.

        The bare name exists when there is no `rest` shape or the shape matches an empty rest.
        """
        if self.rest is None:
            return rest is None
        if rest == "":
            return False                                    # "chat:" is no channel
        return re.fullmatch(self.rest, rest or "") is not None   # re caches a str pattern once compiled

    def keeps(self, event: str) -> bool:
        """True when `event` gets an offset and a place in the history."""
        return self.stream and event not in self.ephemeral and event not in (PRESENCE_JOINED, PRESENCE_LEFT)


class Channels:
    """Every declared namespace, looked up by a channel's name."""

    def __init__(self) -> None:
        self._by_name: dict[str, Namespace] = {}

    def add(self, namespace: Namespace) -> None:
        """Declare a namespace (each domain's setup() does, before the app starts)."""
        if namespace.name in self._by_name:
            raise ValueError(f"channel namespace {namespace.name!r} declared twice")
        self._by_name[namespace.name] = namespace

    def namespaces(self) -> tuple[Namespace, ...]:
        """Every declared namespace, in declaration order (the AsyncAPI document lists them)."""
        return tuple(self._by_name.values())

    def lookup(self, channel: str) -> tuple[Namespace, str]:
        """The namespace of `channel` and the rest of its name; FrameError for unknown ones."""
        name, colon, rest = channel.partition(":")
        namespace = self._by_name.get(name)
        if namespace is None or len(channel) > MAX_CHANNEL or not namespace.accepts(rest if colon else None):
            raise FrameError(UNKNOWN_CHANNEL)
        return namespace, rest

    def find(self, channel: str) -> Namespace | None:
        """The namespace of `channel`, or None when no declared one accepts the name."""
        try:
            return self.lookup(channel)[0]
        except FrameError:
            return None

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
