"""backend/tasks.py: the periodic helper every sweeper is registered through."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from backend.tasks import drain, periodic
from tests.support import eventually


async def test_a_failing_pass_is_logged_and_the_next_one_runs(caplog) -> None:
    passes: list[int] = []

    async def step() -> None:
        passes.append(len(passes))
        if len(passes) == 1:
            raise RuntimeError("database lost")

    context = periodic("test-ticker", lambda app: 0.0, lambda app: step)   # 0 is raised to MIN_INTERVAL
    running = context(web.Application())
    await running.__anext__()

    def ran_again() -> None:
        assert len(passes) >= 3

    await eventually(ran_again)
    (task,) = [t for t in asyncio.all_tasks() if t.get_name() == "test-ticker"]
    assert "test-ticker: pass failed" in caplog.text
    with pytest.raises(StopAsyncIteration):     # what aiohttp's cleanup does: resume the context past yield
        await running.__anext__()
    assert task.cancelled()


async def test_drain_repeats_full_batches_and_counts_each() -> None:
    sizes = iter([3, 3, 1, 3])
    seen: list[int] = []

    async def step() -> int:
        return next(sizes)

    await drain(step, 3, seen.append)
    assert seen == [3, 3, 1]
