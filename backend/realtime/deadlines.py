"""When sockets' tokens stop being valid (SPEC §8.1: close 4001 at expiry): one timer per instant.

A timer per socket cost ≈ 0.54 KB of every idle authenticated socket (bench: tracemalloc at 2,000
sockets). Token deadlines are whole seconds (exp plus the leeway), so however many sockets an
instance holds, they share at most one timer per second of the tokens' lifetime, and each closes at
the same instant its own timer would have fired.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from backend.realtime.const import CLOSE_UNAUTHORIZED


class Expiring(Protocol):
    """A socket that can be told to close (Connection)."""

    def close_soon(self, code: int, message: str) -> None:
        """Close without waiting for it."""
        ...


class Deadlines:
    """Sockets by the instant their token expires, and one timer per instant."""

    def __init__(self) -> None:
        self._due: dict[float, set[Expiring]] = {}
        self._timers: dict[float, asyncio.TimerHandle] = {}

    def add(self, conn: Expiring, deadline: float | None) -> None:
        """Close `conn` with 4001 at `deadline` (a Unix time; None: never)."""
        if deadline is None:
            return
        due = self._due.get(deadline)
        if due is None:
            due = self._due[deadline] = set()
            self._timers[deadline] = asyncio.get_running_loop().call_later(
                max(0.0, deadline - time.time()), self._expire, deadline)
        due.add(conn)

    def discard(self, conn: Expiring, deadline: float | None) -> None:
        """Forget `conn` (closed, or given another token); the instant's last socket cancels its timer."""
        due = self._due.get(deadline) if deadline is not None else None
        if due is None:
            return
        due.discard(conn)
        if not due:
            del self._due[deadline]
            self._timers.pop(deadline).cancel()

    def _expire(self, deadline: float) -> None:
        self._timers.pop(deadline, None)
        for conn in self._due.pop(deadline, ()):
            conn.close_soon(CLOSE_UNAUTHORIZED, "token expired")
