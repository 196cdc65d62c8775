"""Channel snapshots shared by subscribers that joined before one read started (SPEC §8.2).

A subscriber joins its channel first and reads the snapshot second, so no event falls between
them. Any read that *started* after a subscriber joined is therefore just as good for it as a read
of its own. Per channel at most one read runs; subscribers that joined after it started wait for
the next one, which starts as soon as it ends and serves all of them. A burst of thousands of
`cars` subscriptions (a reconnect storm after a deploy) costs one database read at a time.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

Load = Callable[[], Awaitable[Any]]


@dataclass(slots=True)
class _Channel:
    first_ticket: int = 0                                # tickets below it joined before the read began
    reading: asyncio.Future[Any] | None = None
    following: asyncio.Future[Any] | None = None         # the result of the read after `reading`
    load: Load | None = field(default=None, repr=False)  # how the following read reads


class Snapshots:
    """Per channel: the read in flight and the one queued behind it."""

    def __init__(self) -> None:
        self._tickets = itertools.count(1)
        self._channels: dict[str, _Channel] = {}

    def ticket(self) -> int:
        """Call right after a subscriber's join completed; hand the ticket to `get`."""
        return next(self._tickets)

    async def get(self, channel: str, ticket: int, load: Load) -> Any:
        """A snapshot of `channel` read after the holder of `ticket` joined."""
        state = self._channels.setdefault(channel, _Channel())
        if state.reading is None:
            result = self._start(channel, state, load)
        elif ticket < state.first_ticket:
            result = state.reading
        else:
            if state.following is None:
                state.following = asyncio.get_running_loop().create_future()
                state.load = load
            result = state.following
        # Shielded: a subscriber that goes away does not cancel the read the others wait for.
        return await asyncio.shield(result)

    def _start(self, channel: str, state: _Channel, load: Load) -> asyncio.Future[Any]:
        state.first_ticket = next(self._tickets)
        state.reading = reading = asyncio.ensure_future(load())
        reading.add_done_callback(lambda _: self._finished(channel, state))
        return reading

    def _finished(self, channel: str, state: _Channel) -> None:
        following, load = state.following, state.load
        state.reading = state.following = state.load = None
        if following is None or load is None:
            if self._channels.get(channel) is state:
                del self._channels[channel]
            return
        # Every waiter's ticket is below the new read's first ticket: it serves them all.
        self._start(channel, state, load).add_done_callback(lambda done: _copy(done, following))


def _copy(done: asyncio.Future[Any], into: asyncio.Future[Any]) -> None:
    if into.done():
        return
    if done.cancelled():
        into.cancel()
    elif (error := done.exception()) is not None:
        into.set_exception(error)
    else:
        into.set_result(done.result())
