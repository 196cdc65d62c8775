"""Embedded servers shared by every run.py on one data dir: the first starts them, the last stops them.

Each process holds a lease (a file named by its pid) while it runs. Starting, attaching and the
last-one-out check happen under one file lock, so two processes starting or stopping together
neither start a second server nor leave the servers behind with nobody using them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from backend.config import Config
from backend.embedded import EmbeddedPostgres, EmbeddedValkey

log = logging.getLogger("backend.embedded")

STOP_TIMEOUT = 20.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_pid(pid: int, sig: int, timeout: float = STOP_TIMEOUT) -> None:
    """Signal a server another process started and wait until it is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


class SharedServers:
    """The embedded PostgreSQL and Valkey of one data dir, and the leases of the processes using them."""

    def __init__(self, data_dir: Path, *, pg_port: int = 0, valkey_port: int = 0) -> None:
        self.data_dir = data_dir.resolve()
        self.leases = self.data_dir / "leases"
        # Pinned ports (PG_PORT / VALKEY_PORT) only matter when this process starts the server;
        # one already running on this data dir is used on whatever port it has.
        self.postgres = EmbeddedPostgres(self.data_dir / "pg", port=pg_port)
        self.valkey = EmbeddedValkey(self.data_dir / "valkey", port=valkey_port)
        self._valkey_port_file = self.valkey.data_dir / "server.port"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with (self.data_dir / ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # ---- running servers ------------------------------------------------------------------------
    def _running_postgres(self) -> tuple[int, int] | None:
        """(pid, port) of a live server on this data dir, from its postmaster.pid."""
        try:
            lines = (self.postgres.data_dir / "postmaster.pid").read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return None
        return (pid, port) if _alive(pid) else None

    def _running_valkey(self) -> tuple[int, int] | None:
        try:
            pid, port = (int(x) for x in self._valkey_port_file.read_text().split())
        except (OSError, ValueError):
            return None
        return (pid, port) if _alive(pid) else None

    def postgres_url(self) -> str:
        running = self._running_postgres()
        if running is not None:
            log.info("using the embedded PostgreSQL already running on port %s", running[1])
            return f"postgresql://postgres@127.0.0.1:{running[1]}/postgres"
        return self.postgres.start()

    def valkey_url(self) -> str:
        running = self._running_valkey()
        if running is not None:
            log.info("using the embedded Valkey already running on port %s", running[1])
            return f"redis://127.0.0.1:{running[1]}/0"
        url = self.valkey.start()
        assert self.valkey.process is not None
        self._valkey_port_file.write_text(f"{self.valkey.process.pid} {self.valkey.port}")
        return url

    # ---- leases ---------------------------------------------------------------------------------
    def _others(self) -> list[int]:
        """Live processes other than this one that hold a lease (stale leases are removed)."""
        others = []
        for lease in self.leases.glob("*"):
            try:
                pid = int(lease.name)
            except ValueError:
                continue
            if pid == os.getpid():
                continue
            if _alive(pid):
                others.append(pid)
            else:
                lease.unlink(missing_ok=True)
        return others

    @contextlib.contextmanager
    def use(self, *, postgres: bool, valkey: bool) -> Iterator[tuple[str | None, str | None]]:
        """URLs of the servers asked for, started unless running; the last user out stops them."""
        with self._locked():
            self.leases.mkdir(exist_ok=True)
            (self.leases / str(os.getpid())).touch()
            try:
                urls = (self.postgres_url() if postgres else None, self.valkey_url() if valkey else None)
            except BaseException:
                self._leave(postgres=postgres, valkey=valkey)
                raise
        try:
            yield urls
        finally:
            with self._locked():
                self._leave(postgres=postgres, valkey=valkey)

    def _leave(self, *, postgres: bool, valkey: bool) -> None:
        (self.leases / str(os.getpid())).unlink(missing_ok=True)
        if self._others():
            log.info("embedded servers left running for the other run.py processes on %s", self.data_dir)
            return
        if valkey:
            self._stop_valkey()
        if postgres:
            self._stop_postgres()

    def _stop_postgres(self) -> None:
        if self.postgres.process is not None:           # ours: wait on the child itself
            self.postgres.stop()
            return
        running = self._running_postgres()
        if running is not None:
            _stop_pid(running[0], signal.SIGINT)        # fast shutdown, as EmbeddedPostgres.stop

    def _stop_valkey(self) -> None:
        if self.valkey.process is not None:
            self.valkey.stop()
        else:
            running = self._running_valkey()
            if running is not None:
                _stop_pid(running[0], signal.SIGTERM)
        self._valkey_port_file.unlink(missing_ok=True)


def has_database(data_dir: Path) -> bool:
    """True when an embedded PostgreSQL was initialised under `data_dir` (a server has run there)."""
    return (data_dir / "pg" / "PG_VERSION").exists()


@contextlib.contextmanager
def services(config: Config, data_dir: Path) -> Iterator[Config]:
    """`config` with the embedded servers it lacks (started if needed) filled in; the last run.py on
    `data_dir` to exit stops them, whatever happens. Every command of run.py opens them this way."""
    need_pg, need_valkey = config.database_url is None, config.redis_url is None
    if not (need_pg or need_valkey):
        yield config
        return
    shared = SharedServers(data_dir, pg_port=config.pg_port, valkey_port=config.valkey_port)
    with shared.use(postgres=need_pg, valkey=need_valkey) as (pg_url, valkey_url):
        yield dataclasses.replace(config, database_url=config.database_url or pg_url,
                                  redis_url=config.redis_url or valkey_url)
