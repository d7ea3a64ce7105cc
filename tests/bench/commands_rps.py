"""Requests per second of POST /api/commands (one web process), beside a bare Starlette endpoint.

    python -m tests.bench.commands_rps [--seconds 10] [--connections 32]

Starts its own Redis, one uvicorn web process (the real app) and one bare Starlette app on
the same settings, then drives each with wrk (Debian package `wrk`) from a second process:
  * sync:  RestockProduct over 200 products, answered after the commit (200)
  * async: the same command with `Prefer: respond-async`, answered after enqueueing (202)
  * bare:  a Starlette endpoint that reads the body and returns a constant JSON
A command worker and the projector run too, as in production, so the machine is not idle.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from app.adapters.embedded_redis import free_port, port_open
from tests.support.polling import eventually_sync
from tests.support.processes import ProcessGroup
from tests.support.redis_server import running_redis

PRODUCTS = 200
LUA = """
local skus = {}
for i = 1, %(n)d do skus[i] = string.format("BENCH-%%04d", i) end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Cookie"] = "%(cookie)s"
wrk.headers["X-CSRF-Token"] = "%(csrf)s"
%(prefer)s
request = function()
  local sku = skus[math.random(1, #skus)]
  return wrk.format(nil, nil, nil, '{"type":"RestockProduct","sku":"' .. sku .. '","quantity":1}')
end
local codes = {}
response = function(status) codes[status] = (codes[status] or 0) + 1 end
done = function()
  for code, count in pairs(codes) do io.write(string.format("status %%d: %%d\\n", code, count)) end
end
"""


def login(base: str) -> tuple[str, str]:
    body = json.dumps({"username": "admin", "password": "admin-pass"}).encode()
    request = urllib.request.Request(
        f"{base}/api/session", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request) as reply:
        cookie = reply.headers["set-cookie"].split(";")[0]
        return cookie, json.loads(reply.read())["csrf_token"]


def post(base: str, cookie: str, csrf: str, payload: dict[str, object]) -> int:
    request = urllib.request.Request(
        f"{base}/api/commands",
        json.dumps(payload).encode(),
        {"Content-Type": "application/json", "Cookie": cookie, "X-CSRF-Token": csrf},
    )
    with urllib.request.urlopen(request) as reply:
        return reply.status


def wrk(url: str, script: Path, seconds: int, connections: int) -> tuple[float, str]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return (float(match.group(1)) if match else 0.0), out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="bench-"))
    with running_redis(root / "redis", appendonly=True) as redis_server:
        web_port, bare_port = free_port(), free_port()
        group = ProcessGroup(
            root,
            {
                "REDIS_URL": redis_server.url,
                "APP_ENV": "development",
                "LOG_LEVEL": "WARNING",
                "PAYMENT_LATENCY_MS": "0",
            },
        )
        try:
            group.start("web", "app.web.serve", extra_env={"PORT": str(web_port)})
            group.start("commands", "workers.commands")
            group.start("projector", "workers.projector")
            group.start(
                "bare",
                "uvicorn",
                "--factory",
                "tests.bench.bare_app:create_app",
                "--port",
                str(bare_port),
                "--log-level",
                "warning",
                "--no-access-log",
            )
            base = f"http://127.0.0.1:{web_port}"
            eventually_sync(lambda: port_open(web_port) and port_open(bare_port), timeout=30)
            cookie, csrf = eventually_sync(lambda: _try_login(base), timeout=30)
            for i in range(1, PRODUCTS + 1):
                post(
                    base,
                    cookie,
                    csrf,
                    {
                        "type": "CreateProduct",
                        "sku": f"BENCH-{i:04d}",
                        "name": f"Bench {i}",
                        "price_cents": 100,
                        "initial_stock": 0,
                    },
                )
            results = {}
            for name, url, prefer in (
                ("bare Starlette endpoint", f"http://127.0.0.1:{bare_port}/api/commands", ""),
                ("POST /api/commands sync (RestockProduct)", f"{base}/api/commands", ""),
                (
                    "POST /api/commands async (Prefer: respond-async)",
                    f"{base}/api/commands",
                    'wrk.headers["Prefer"] = "respond-async"',
                ),
            ):
                script = root / f"{len(results)}.lua"
                script.write_text(
                    LUA % {"n": PRODUCTS, "cookie": cookie, "csrf": csrf, "prefer": prefer}
                )
                wrk(url, script, 2, args.connections)  # warm up
                rps, out = wrk(url, script, args.seconds, args.connections)
                results[name] = rps
                print(f"--- {name}\n{out}")
            print(f"cpu: {os.cpu_count()} cores; wrk -t2 -c{args.connections} -d{args.seconds}s")
            for name, rps in results.items():
                print(f"{name:55s} {rps:10.0f} req/s")
        finally:
            group.stop_all()
    return 0


def _try_login(base: str) -> tuple[str, str] | None:
    try:
        return login(base)
    except OSError:
        return None


if __name__ == "__main__":
    sys.exit(main())
