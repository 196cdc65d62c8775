"""The public free-car list, encoded once per change and kept per instance (GET /api/cars, issue 11).

Every change of a free car already reaches every instance as an event on the `cars` channel
(SPEC §4.5), published after its commit. The cache listens to that channel as one more local
subscriber of the hub and drops the encoded list on every event, so each change costs one read
and one encoding, however many clients ask.

Why it stays right:
- a read that was under way when an event arrived may hold the state before that event, so its
  result is not kept (the generation moved on while it ran);
- while the bus is not connected events can be missed, so nothing is served from or stored in the
  cache then, and a list is never older than MAX_AGE, which bounds what a pub/sub connection lost
  and regained between two requests could leave behind;
- a change made through this or another instance is seen once its event is read from Redis: the
  same moment the websocket subscribers of that instance see it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from backend import keys
from backend.jsonutil import dumpb
from backend.sharing.const import CARS

MAX_AGE = 1.0          # seconds; see the module docstring
Load = Callable[[], Awaitable[list[dict[str, object]]]]


class FreeCars:
    """The encoded free-car list of this instance and the generation of the `cars` events seen."""

    def __init__(self, connected: Callable[[], bool]) -> None:
        self._connected = connected
        self._body: bytes | None = None
        self._built = 0.0
        self._generation = 0

    # The hub's Subscriber protocol: every `cars` event makes the list stale.
    def push(self, frame: bytes) -> bool:
        """An event of `cars` arrived: the kept list may be wrong now."""
        self.invalidate()
        return True

    def revoked(self, jti: str | None) -> None:
        """Never revoked: the cache holds no credentials."""

    def invalidate(self) -> None:
        self._generation += 1
        self._body = None

    async def body(self, load: Load) -> bytes:
        """The JSON array of free cars: the kept one while it is valid, otherwise `load()` encoded."""
        body = self._body
        if body is not None and time.monotonic() - self._built < MAX_AGE and self._connected():
            return body
        generation = self._generation
        body = dumpb(await load())
        # Kept only if no event arrived while it was read and events can be heard at all.
        if generation == self._generation and self._connected():
            self._body, self._built = body, time.monotonic()
        return body


async def free_cars_ctx(app: web.Application) -> AsyncIterator[None]:
    """Listen to `cars` for the app's lifetime (after the bus and hub are open)."""
    bus, hub = app[keys.BUS], app[keys.HUB]
    cache = FreeCars(lambda: bool(getattr(bus, "connected", False)))
    app[keys.FREE_CARS] = cache
    gauge = app[keys.METRICS].ws_subscriptions
    await hub.join(cache, CARS)
    gauge.dec()             # the hub counts every member; `ws_subscriptions` counts websockets only
    yield
    gauge.inc()
    await hub.leave(cache, CARS)


def cached_response(body: bytes) -> web.Response:
    """The kept bytes as the same response `respond()` gives (application/json; charset=utf-8)."""
    return web.Response(body=body, content_type="application/json", charset="utf-8")
