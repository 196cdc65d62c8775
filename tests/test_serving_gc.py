"""A serving process takes its startup heap out of the collector's way and collects less often."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import asyncio, gc
from backend.app import SERVING_GC_THRESHOLDS, freeze_startup_heap
before = gc.get_threshold()
asyncio.run(freeze_startup_heap(None))
print(before, gc.get_threshold(), gc.get_freeze_count() > 10_000, SERVING_GC_THRESHOLDS)
"""


def test_a_serving_process_freezes_its_startup_heap_and_raises_the_thresholds() -> None:
    # A process of its own: a frozen heap in the test process would keep every test's objects.
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split("\n")[0] == "(700, 10, 10) (50000, 20, 20) True (50000, 20, 20)"
