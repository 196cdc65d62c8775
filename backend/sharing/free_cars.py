"""The public free-car list, encoded once per change and kept per instance (GET /api/cars, issue 11).

Every change of a free car already reaches every instance as an event on the `cars` channel
(SPEC §4.5), published after its commit. The cache listens to that channel as one more local
subscriber of the hub and drops the encoded list on every event, so each change costs one read
and one encoding, however many clients ask.

Why it stays right:
- a read that was under way when an event arrived may hold the state before that event, so its
  result is not kept (the generation moved on while it ran);
- a list is kept and served only under the pub/sub session it was read in (`Bus.session("cars")`:
  subscribed, confirmed, the same connection — on a cluster the same shard link): while events
  can be missed there is no session, and a connection lost and regained is another one, so
  nothing read before the loss is served after it; MAX_AGE bounds a list's age all the same;
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

    def __init__(self, session: Callable[[], object | None]) -> None:
        self._session = session               # the bus's token for `cars` (None: events may be missed)
        self._body: bytes | None = None
        self._built = 0.0
        self._built_in: object | None = None   # the session the kept list was read in
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
        session = self._session()
        if body is not None and session is not None and session == self._built_in \
                and time.monotonic() - self._built < MAX_AGE:
            return body
        generation = self._generation
        body = dumpb(await load())
        # Kept only if no event arrived while it was read, and every later one will be heard.
        if session is not None and generation == self._generation and self._session() == session:
            self._body, self._built, self._built_in = body, time.monotonic(), session
        return body


async def free_cars_ctx(app: web.Application) -> AsyncIterator[None]:
    """Listen to `cars` for the app's lifetime (after the bus and hub are open)."""
    bus, hub = app[keys.BUS], app[keys.HUB]
    cache = FreeCars(lambda: bus.session(CARS))
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
