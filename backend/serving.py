"""Run the HTTP server: one process, or `--workers N` processes sharing the port (SO_REUSEPORT).

With N workers the parent has already started the embedded servers and migrated (cli.serve); it
only starts the workers with its resolved Config (the same URLs, and the same JWT keys and provider
secret, which each process would otherwise draw at random) and supervises them. SIGINT/SIGTERM to
the parent stop them all gracefully. A worker that dies stops the others too and the parent exits 1:
a process manager restarts the whole set, never a half-sized one behind the same port.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from multiprocessing.connection import Connection
from types import FrameType

from backend import logs
from backend.app import create_app, freeze_startup_heap  # imported before the workers fork
from backend.config import Config

log = logging.getLogger("backend.serving")

SHUTDOWN_TIMEOUT = 5.0          # aiohttp's graceful shutdown: websockets get 1001, requests finish
STOP_GRACE = SHUTDOWN_TIMEOUT + 5.0   # then a worker still alive is killed


def run_server(config: Config, host: str, port: int, *, reuse_port: bool = False) -> None:
    """Serve `create_app(config)` until SIGINT/SIGTERM (one process, or one worker of several)."""
    from backend.api.protocol import run_app

    with contextlib.suppress(ImportError):
        import asyncio

        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    # run_app turns SIGINT/SIGTERM into a graceful shutdown (on_shutdown closes websockets with 1001).
    # keepalive_timeout is aiohttp's timer armed when a connection opens and after each response:
    # a connection still without a complete request when it fires is closed. That is the header-read
    # timeout of issue 10 (and the idle keep-alive limit): half-sent requests are not held forever.
    # backend.api.protocol.run_app is web.run_app with a runner whose connections answer malformed
    # requests (oversized headers, bad characters...) in the surface's error style.
    app = create_app(config)
    app.on_startup.append(freeze_startup_heap)
    run_app(app, host=host, port=port, reuse_port=reuse_port or None, access_log=None,
            keepalive_timeout=config.header_timeout, shutdown_timeout=SHUTDOWN_TIMEOUT,
            print=lambda msg: log.info(msg.strip()))


def _watch_parent(lifeline: Connection) -> None:
    """Stop this worker when run.py is gone without stopping it (SIGKILL): never an orphan on the port.

    `lifeline` is the read end of a pipe only run.py writes to; the kernel closes the write end when
    run.py dies however it dies, and the read end then reports EOF. (The worker's parent process is
    the fork server, which outlives run.py as long as any worker does, so its pid tells nothing.)"""
    def watch() -> None:
        multiprocessing.connection.wait([lifeline])
        log.warning("run.py is gone; worker %s stops", os.getpid())
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _worker(config: Config, host: str, port: int, lifeline: Connection) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):     # whatever the fork server left; run_app sets its own
        signal.signal(sig, signal.SIG_DFL)
    # A session of its own: Ctrl-C in a terminal reaches the parent only, which stops each worker
    # exactly once (a second signal in the middle of a graceful shutdown would cut it short).
    os.setsid()
    logs.configure(config.log_level)
    _watch_parent(lifeline)
    run_server(config, host, port, reuse_port=True)


def run_workers(config: Config, host: str, port: int, count: int) -> int:
    """Start `count` workers on host:port and wait; 0 after a requested stop, 1 if a worker died."""
    # forkserver: one fresh interpreter imports the app once, then forks each worker from it. Plain
    # fork would copy this process's threads (the log writer's) and their held locks into the
    # workers; spawn imports the whole app again in every worker at once, which on two busy cores
    # took the second worker seconds longer to answer.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    lifeline, alive = context.Pipe(duplex=False)       # this process holds the only write end
    workers = [context.Process(target=_worker, args=(config, host, port, lifeline),
                               name=f"worker-{number}") for number in range(1, count + 1)]
    stop_requested = False

    def request_stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stop_requested
        stop_requested = True

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    died = None
    try:
        for worker in workers:
            worker.start()
        log.info("%s workers on http://%s:%s (pids %s)", count, host, port,
                 ", ".join(str(worker.pid) for worker in workers))
        while not stop_requested and died is None:
            multiprocessing.connection.wait([worker.sentinel for worker in workers], timeout=0.5)
            died = next((worker for worker in workers if not worker.is_alive()), None)
        if died is not None and not stop_requested:
            log.error("%s (pid %s) exited with %s; stopping the others", died.name, died.pid, died.exitcode)
    finally:
        _stop(workers)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        alive.close()
    return 1 if died is not None and not stop_requested else 0


def _stop(workers: list[multiprocessing.process.BaseProcess]) -> None:
    """SIGTERM every live worker (graceful), then SIGKILL what is left after STOP_GRACE."""
    for worker in workers:
        if worker.pid is not None and worker.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    for worker in workers:
        if worker.pid is None:
            continue
        worker.join(max(0.0, deadline - time.monotonic()))
        if worker.is_alive():
            log.warning("%s (pid %s) did not stop in %g s; killed", worker.name, worker.pid, STOP_GRACE)
            worker.kill()
            worker.join()
