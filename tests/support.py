"""Helpers shared by every test domain.

`eventually()` is the one way tests wait for a state that another task, instance or process
reaches on its own and that announces itself with no event to await (a row written by a
background task, a Redis subscription dropped after a socket closed, a server answering its
readiness probe). Waits on websocket frames do not need it: they receive with a timeout.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar, overload

T = TypeVar("T")

WAIT = 5.0          # seconds: long enough for a loaded CI machine, short enough to fail a hung test fast
POLL = 0.02         # seconds between tries: cheap checks, quick reaction


# ASYNC109 wants callers to wrap the call in asyncio.timeout() instead of passing `timeout`; that
# would end the wait with a bare TimeoutError, and the point here is to end it with the check's
# last AssertionError, which says what was still wrong.
@overload
async def eventually(check: Callable[[], Awaitable[T]], *, timeout: float = WAIT,  # noqa: ASYNC109
                     interval: float = POLL) -> T: ...


@overload
async def eventually(check: Callable[[], T], *, timeout: float = WAIT,  # noqa: ASYNC109
                     interval: float = POLL) -> T: ...


async def eventually(check: Callable[[], Awaitable[T] | T], *, timeout: float = WAIT,  # noqa: ASYNC109
                     interval: float = POLL) -> T:
    """Call `check` every `interval` seconds until it passes; return what it returned.

    `check` is a sync or async callable taking no argument. It fails a try by raising
    `AssertionError` (write the test's own `assert` inside it, so the final failure shows pytest's
    usual comparison) or by returning exactly `False` (a plain predicate such as
    `lambda: not hub.connections`); any other result passes. Any other exception is a bug, not
    "not yet": it propagates at once instead of being retried for `timeout` seconds.

    The whole wait is bounded by `timeout`, including an async check that hangs: a try still running
    at the deadline is cancelled, and no try starts once less than `interval` is left. Then the last
    `AssertionError` is raised again, with a note saying how long and how many times it was tried,
    so a test never passes or hangs by luck.
    """
    if timeout <= 0 or interval <= 0:
        raise ValueError("eventually() needs a positive timeout and interval")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    failure: AssertionError | None = None
    tries = 0
    while True:
        tries += 1
        bound = asyncio.timeout_at(deadline)
        try:
            async with bound:
                result = check()
                if inspect.isawaitable(result):
                    result = await result
        except AssertionError as error:
            failure = error
        except TimeoutError:
            if not bound.expired():
                raise                      # the check's own timeout: a real error, not our deadline
            break                          # this try ran into the deadline: report the last finished one
        else:
            if result is not False:
                return result              # type: ignore[return-value]  # awaited above when awaitable
            failure = AssertionError(f"{_name(check)} returned False")
        if loop.time() + interval >= deadline:
            break
        await asyncio.sleep(interval)
    if failure is None:
        failure = AssertionError(f"{_name(check)} did not finish within {timeout} s")
    failure.add_note(f"eventually(): still failing after {timeout} s and {tries} tries")
    raise failure


def _name(check: Callable[..., object]) -> str:
    """A readable name of the check for failure messages (lambdas get their source location)."""
    name = getattr(check, "__qualname__", None) or repr(check)
    code = getattr(check, "__code__", None)
    if name.endswith("<lambda>") and code is not None:
        return f"the check at {code.co_filename}:{code.co_firstlineno}"
    return name
