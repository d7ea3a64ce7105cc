"""Everything for development in one command: `python -m app.dev`.

Starts the Procfile's processes (embedded Redis, web, every worker) with honcho, and prints
the URL once /readyz says ready (every worker heartbeating, the demo users and products in
place). REDIS_URL and PORT are honoured; Ctrl-C stops all.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import urllib.request
from pathlib import Path

from honcho.environ import parse_procfile
from honcho.manager import Manager

from app.adapters.embedded_redis import port_open

ROOT = Path(__file__).resolve().parents[1]


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2) as reply:
            return bool(reply.status == 200)
    except OSError:  # not serving yet, or 503 (HTTPError is an OSError)
        return False


def _banner(url: str, stop: threading.Event) -> None:
    deadline = time.monotonic() + 120
    while not _ready(url):
        if stop.wait(0.3):
            return
        if time.monotonic() > deadline:
            print(f"\nStorefront is not ready after 120 s: see {url}/readyz\n", flush=True)
            return
    line = "=" * 64
    print(
        f"\n{line}\n  Storefront is running at {url}\n"
        "  Sign in as admin / admin-pass, alice / alice-pass or bob / bob-pass.\n"
        f"  Status page: {url}/admin/status   Ctrl-C stops everything.\n{line}\n",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6390/0")
    )
    args = parser.parse_args(argv)
    port = args.port
    while port_open(port):
        port += 1
    env = dict(os.environ)
    env.update(
        REDIS_URL=args.redis_url,
        PORT=str(port),
        PYTHONUNBUFFERED="1",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    env.setdefault("APP_ENV", "development")
    procfile = parse_procfile((ROOT / "Procfile").read_text())
    manager = Manager()
    for name, command in procfile.processes.items():
        manager.add_process(name, command, env=env, cwd=str(ROOT))
    stop = threading.Event()
    threading.Thread(target=_banner, args=(f"http://127.0.0.1:{port}", stop), daemon=True).start()
    manager.loop()
    stop.set()
    return manager.returncode or 0


if __name__ == "__main__":
    sys.exit(main())
