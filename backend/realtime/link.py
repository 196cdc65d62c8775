"""One pub/sub connection kept alive: the reconnect loop shared by the bus and its cluster shards.

A subclass writes `_session()`: open the connection, subscribe what it holds, read until the
connection fails. This class runs it again with backoff after every loss (SPEC §8.4), counts the
loss once per outage, and stops it for good, which redis-py makes harder than a cancel: it can
swallow a cancellation that lands inside a timed read, so closing the connection is what really
ends the read, and cleanup never waits on it for more than STOP_TIMEOUT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from backend.kv import REDIS_ERRORS
from backend.metrics import Metrics

log = logging.getLogger("backend.realtime.link")

BACKOFF_FIRST, BACKOFF_MAX = 0.05, 2.0
POLL = 1.0                 # idle read timeout: lets redis-py's health check ping a quiet connection
STOP_TIMEOUT = 2.0


def pubsub_client(url: str) -> Redis:
    """A listener's own client: no silent retries, so the reconnect loop sees every loss."""
    return Redis.from_url(url, socket_connect_timeout=2, socket_keepalive=True, health_check_interval=10,
                          retry=Retry(NoBackoff(), 0))


class PubSubLink:
    """Runs `_session()` until stopped, reconnecting with backoff; `connected` while it reads."""

    def __init__(self, metrics: Metrics, label: str) -> None:
        self._metrics = metrics
        self._label = label                # names the connection in logs and the task
        self._pubsub: PubSub | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.connected = False

    def start(self) -> None:
        """Start the reader task (inside the app's cleanup context)."""
        self._task = asyncio.create_task(self._run(), name=self._label)

    async def stop(self) -> None:
        """End the reader and close the connection; never hangs on a read redis-py shields."""
        self._stopping = True
        task = self._task
        if task is not None:
            task.cancel()
            await self._close_pubsub()
            await asyncio.wait({task}, timeout=STOP_TIMEOUT)
            if not task.done():
                log.warning("pub/sub reader did not stop in time", extra={"link": self._label})
        await self._close_pubsub()

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        self.connected = False
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def _session(self) -> None:
        raise NotImplementedError

    def _failed(self, error: Exception, failures: int) -> None:
        """Called after each failed session; `failures` counts them since the last good connection."""

    async def _run(self) -> None:
        backoff, failures = BACKOFF_FIRST, 0
        while not self._stopping:
            try:
                await self._session()
            except REDIS_ERRORS as exc:
                if self._stopping:
                    return
                was_connected = self.connected
                await self._close_pubsub()
                if was_connected:
                    log.warning("Redis pub/sub lost, reconnecting", extra={"link": self._label, "error": str(exc)})
                    self._metrics.bus_reconnects.inc()
                    backoff, failures = BACKOFF_FIRST, 0
                failures += 1
                self._failed(exc, failures)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
