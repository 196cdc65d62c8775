"""Channel snapshots shared by subscribers that joined before one read started (SPEC §8.2).

A subscriber joins its channel first and reads the snapshot second, so no event falls between
them. Any read that *started* after a subscriber joined is therefore just as good for it as a read
of its own: a burst of thousands of `cars` subscriptions (a reconnect storm after a deploy) costs
one database read at a time per channel instead of one each.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

Load = Callable[[], Awaitable[Any]]


@dataclass(slots=True)
class _Read:
    first_ticket: int              # every ticket below this one had joined before the read started
    result: asyncio.Future[Any]


class Snapshots:
    """Per channel, the latest snapshot read and who may share it."""

    def __init__(self) -> None:
        self._tickets = itertools.count(1)
        self._reads: dict[str, _Read] = {}

    def ticket(self) -> int:
        """Call right after a subscriber's join completed; hand the ticket to `get`."""
        return next(self._tickets)

    async def get(self, channel: str, ticket: int, load: Load) -> Any:
        """A snapshot of `channel` read after the holder of `ticket` joined."""
        latest = self._reads.get(channel)
        if latest is None or latest.first_ticket <= ticket:
            latest = _Read(next(self._tickets), asyncio.ensure_future(load()))
            self._reads[channel] = latest
            latest.result.add_done_callback(lambda _, ch=channel, read=latest: self._forget(ch, read))
        # Shielded: a subscriber that goes away does not cancel the read the others wait for.
        return await asyncio.shield(latest.result)

    def _forget(self, channel: str, read: _Read) -> None:
        # Only reads in flight are kept: a finished one could serve only subscribers already past it.
        if self._reads.get(channel) is read:
            del self._reads[channel]
