"""Requests per second of POST /api/commands (one web process), beside a bare Starlette endpoint.

    python -m tests.bench.commands_rps [--seconds 10] [--connections 32]
        [--otlp] [--traceparent] [--env NAME=VALUE ...]

Starts its own Redis, one uvicorn web process (the real app) and one bare Starlette app on
the same settings, then drives each with wrk (Debian package `wrk`) from a second process:
  * sync:  RestockProduct over 200 products, answered after the commit (200)
  * async: the same command with `Prefer: respond-async`, answered after enqueueing (202)
  * bare:  a Starlette endpoint that reads the body and returns a constant JSON
A command worker and the projector run too, as in production, so the machine is not idle.

Tracing: by default nothing is traced (no OTLP endpoint; wrk sends no traceparent), which is
what the overhead of tracing "off" is measured with. `--otlp` starts an OTLP receiver (a
process of its own) and points every process at it: every request is traced and exported.
`--traceparent` has wrk send a sampled traceparent with each request (the pages' form posts
do): traced into the span store only, or exported too with `--otlp`.
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
local traced = %(traced)s
local function hex(n)
  local out = {}
  for i = 1, n do out[i] = string.format("%%02x", math.random(0, 255)) end
  return table.concat(out)
end
request = function()
  local sku = skus[math.random(1, #skus)]
  local headers = nil
  if traced then  -- wrk.format's headers replace wrk.headers: copy them
    headers = {}
    for name, value in pairs(wrk.headers) do headers[name] = value end
    headers["traceparent"] = "00-" .. hex(16) .. "-" .. hex(8) .. "-01"
  end
  return wrk.format(nil, nil, headers,
    '{"type":"RestockProduct","sku":"' .. sku .. '","quantity":1}')
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


TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU the processes (and their waited-for children) used so far."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total / TICKS


def wrk(url: str, script: Path, seconds: int, connections: int) -> tuple[float, str]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return (float(match.group(1)) if match else 0.0), out


def create_products(base: str, cookie: str, csrf: str) -> None:
    """The PRODUCTS products (BENCH-0001…) the wrk script's commands name, out of stock."""
    for i in range(1, PRODUCTS + 1):
        body = {"type": "CreateProduct", "sku": f"BENCH-{i:04d}", "name": f"Bench {i}"}
        post(base, cookie, csrf, {**body, "price_cents": 100, "initial_stock": 0})


def wrk_script(
    path: Path, cookie: str, csrf: str, prefer: str = "", *, traced: bool = False, n: int = PRODUCTS
) -> Path:
    """wrk's script: POST commands over `n` products, as the signed-in cookie."""
    fill = {"n": n, "cookie": cookie, "csrf": csrf, "prefer": prefer}
    path.write_text(LUA % {**fill, "traced": "true" if traced else "false"})
    return path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--otlp", action="store_true", help="export every span to a receiver")
    parser.add_argument("--traceparent", action="store_true", help="wrk sends a traceparent")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for every process")
    parser.add_argument("--only", default="", help="run only the endpoints whose name has this")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="bench-"))
    with running_redis(root / "redis", appendonly=True) as redis_server:
        web_port, bare_port = free_port(), free_port()
        env = {
            "REDIS_URL": redis_server.url,
            "APP_ENV": "development",
            "LOG_LEVEL": "WARNING",
            "PAYMENT_LATENCY_MS": "0",
        }
        env.update(item.split("=", 1) for item in args.env)
        group = ProcessGroup(root, env)
        try:
            if args.otlp:
                otlp_port = free_port()
                group.start("otlp", "tests.support.otlp_receiver", str(otlp_port))
                eventually_sync(lambda: port_open(otlp_port), timeout=30)
                group.env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{otlp_port}"
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
            create_products(base, cookie, csrf)
            results: dict[str, float] = {}
            cpu: dict[str, tuple[float, float]] = {}
            for name, url, prefer in (
                ("bare Starlette endpoint", f"http://127.0.0.1:{bare_port}/api/commands", ""),
                ("POST /api/commands sync (RestockProduct)", f"{base}/api/commands", ""),
                (
                    "POST /api/commands async (Prefer: respond-async)",
                    f"{base}/api/commands",
                    'wrk.headers["Prefer"] = "respond-async"',
                ),
            ):
                if args.only not in name:
                    continue
                script = wrk_script(
                    root / f"{len(results)}.lua", cookie, csrf, prefer, traced=args.traceparent
                )
                wrk(url, script, 2, args.connections)  # warm up
                pids = [p.popen.pid for p in group.procs if p.name in ("web", "commands", "bare")]
                web_pids = [p.popen.pid for p in group.procs if p.name in ("web", "bare")]
                before, web_before = cpu_seconds(pids), cpu_seconds(web_pids)
                rps, out = wrk(url, script, args.seconds, args.connections)
                spent, web_spent = cpu_seconds(pids) - before, cpu_seconds(web_pids) - web_before
                requests = max(1.0, rps * args.seconds)
                results[name] = rps
                cpu[name] = (1e6 * web_spent / requests, 1e6 * spent / requests)
                print(f"--- {name}\n{out}")
            print(f"cpu: {os.cpu_count()} cores; wrk -t2 -c{args.connections} -d{args.seconds}s")
            print(f"tracing: otlp={args.otlp} traceparent={args.traceparent} env={args.env}")
            for name, rps in results.items():
                web_us, all_us = cpu[name]
                print(
                    f"{name:55s} {rps:10.0f} req/s  CPU/request: web {web_us:6.0f} µs, "
                    f"web+worker {all_us:6.0f} µs"
                )
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
