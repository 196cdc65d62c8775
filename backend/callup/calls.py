"""Call providers and the background calls of one instance (SPEC §6.4).

A provider only places a call (`place_call(call) -> provider_call_id`); its outcome arrives
later through `report` — the simulated provider reports itself after CALLUP_SIM_DELAY, a real
one calls POST /v1/provider/events. The request that created an order never waits for any of it:
`Calls.start` runs created → calling → (place the call) in a task the instance owns.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.callup import const, orders
from backend.callup.orders import Call
from backend.jsonutil import loads
from backend.realtime.bus import Bus

log = logging.getLogger("backend.callup.calls")

Report = Callable[[uuid.UUID, str, str], Awaitable[object]]
Spawn = Callable[[Coroutine[Any, Any, object]], None]
FAILING_SUFFIX = "0000"          # the simulated provider's unreachable phones (SPEC §6.4)
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=10)


class ProviderError(Exception):
    """The provider refused the call or could not be reached; the order fails with this reason."""


class Provider(Protocol):
    async def place_call(self, call: Call) -> str:
        """Start the call; returns the provider's call id. The outcome is reported later."""


class SimulatedProvider:
    """For demos and tests: 'rings' after `delay` seconds; phones ending in 0000 fail."""

    def __init__(self, delay: float, report: Report, spawn: Spawn) -> None:
        self._delay, self._report, self._spawn = delay, report, spawn

    async def place_call(self, call: Call) -> str:
        self._spawn(self._outcome(call))
        return f"sim-{uuid.uuid4()}"

    async def _outcome(self, call: Call) -> None:
        await asyncio.sleep(self._delay)       # the simulated call's duration, not a wait "to give time"
        if call.phone.endswith(FAILING_SUFFIX):
            await self._report(call.order_id, const.FAILED, "simulated: number unreachable")
        else:
            await self._report(call.order_id, const.CALLED, "simulated: call delivered")


class HttpProvider:
    """POSTs {order_id, phone, caller} to CALLUP_PROVIDER_URL; the provider answers by callback."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self._session, self._url = session, url

    async def place_call(self, call: Call) -> str:
        body = {"order_id": str(call.order_id), "phone": call.phone, "caller": call.caller}
        try:
            async with self._session.post(self._url, json=body, timeout=HTTP_TIMEOUT) as resp:
                if resp.status >= 300:
                    raise ProviderError(f"provider answered {resp.status}")
                text = await resp.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ProviderError(f"provider unreachable: {type(exc).__name__}") from None
        return _call_id(text)


def _call_id(text: str) -> str:
    """The provider's own id of the call, if its answer names one (for support and reconciliation);
    the call was accepted either way."""
    try:
        answer = loads(text) if text.strip() else None
    except ValueError:
        return ""
    found = (answer.get("call_id") or answer.get("id")) if isinstance(answer, dict) else None
    return str(found)[:200] if found is not None else ""


class Calls:
    """The calls this instance is placing: a task per call, all cancelled when the app stops.

    An order whose task is cancelled by a shutdown stays `created`/`calling`; the sweeper of any
    instance fails it after CALLUP_CALL_TIMEOUT or expires it after CALLUP_CODE_TTL.
    """

    def __init__(self, db: AsyncEngine, bus: Bus) -> None:
        self._db, self._bus = db, bus
        self._tasks: set[asyncio.Task[object]] = set()
        self.provider: Provider | None = None        # set by calls_ctx once its session is open

    def spawn(self, work: Coroutine[Any, Any, object]) -> None:
        """Run `work` as a task owned by this instance."""
        task = asyncio.create_task(work, name="callup-call")
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("call task failed", exc_info=task.exception())

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def report(self, order_id: uuid.UUID, status: str, reason: str) -> tuple[bool, str] | None:
        """A call's outcome, from the simulated provider or a provider callback."""
        return await orders.advance(self._db, self._bus, order_id, status, reason)

    def start(self, call: Call) -> None:
        """Place `call` in the background; the caller returns at once."""
        self.spawn(self._place(call))

    async def _place(self, call: Call) -> None:
        assert self.provider is not None
        moved = await orders.advance(self._db, self._bus, call.order_id, const.CALLING, "placing call")
        if moved is None or not moved[0]:
            return               # verified, expired or reported already: nobody needs the call now
        try:
            call_id = await self.provider.place_call(call)
        except ProviderError as exc:
            await self.report(call.order_id, const.FAILED, str(exc))
            return
        if call_id:
            await orders.set_provider_call_id(self._db, call.order_id, call_id)

    async def close(self) -> None:
        """Cancel every call still in flight and wait for the tasks to end."""
        tasks = tuple(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


SIGNATURE_SCHEME = "sha256="


def sign(secret: str, body: bytes) -> str:
    """The X-Signature value of `body`: sha256=<hex HMAC-SHA256 keyed with CALLUP_PROVIDER_SECRET>."""
    return SIGNATURE_SCHEME + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_valid(secret: str, body: bytes, header: str | None) -> bool:
    """True when `header` is the signature of `body` (constant-time compare)."""
    if not header or not header.startswith(SIGNATURE_SCHEME):
        return False
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().lower().encode())
