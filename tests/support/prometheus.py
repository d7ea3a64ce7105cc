"""Debian's Prometheus for tests: started on a loopback port with a generated scrape config.

Skipped where /usr/bin/prometheus is missing, except under CI=true (where .ci/run installs the
`prometheus` package and a missing binary fails the run).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.adapters.embedded_redis import free_port
from tests.support.polling import eventually_sync

BINARY = os.environ.get("PROMETHEUS_PATH", "/usr/bin/prometheus")


@dataclass(frozen=True)
class Target:
    job: str
    address: str
    """host:port"""
    token: str = ""


def scrape_config(targets: list[Target], interval: str = "1s") -> str:
    jobs: dict[str, list[Target]] = {}
    for target in targets:
        jobs.setdefault(target.job, []).append(target)
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {
                "job_name": job,
                "scrape_timeout": interval,
                **({"authorization": {"credentials": found[0].token}} if found[0].token else {}),
                "static_configs": [{"targets": [t.address for t in found]}],
            }
            for job, found in jobs.items()
        ],
    }
    return json.dumps(config)  # JSON is YAML


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as reply:
            body = json.loads(reply.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("query", query=expr)["result"]
        return result


def require_prometheus() -> str:
    if Path(BINARY).exists():
        return BINARY
    reason = f"no Prometheus at {BINARY}: install Debian's `prometheus` package"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@contextlib.contextmanager
def running_prometheus(root: Path, targets: list[Target]) -> Iterator[Prometheus]:
    binary = require_prometheus()
    root.mkdir(parents=True, exist_ok=True)
    config = root / "prometheus.yml"
    config.write_text(scrape_config(targets))
    port = free_port()
    log = root / "prometheus.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={root / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    made = Prometheus(f"http://127.0.0.1:{port}", process, log)

    def ready() -> bool:
        assert process.poll() is None, f"prometheus exited:\n{log.read_text()}"
        try:
            with urllib.request.urlopen(f"{made.url}/-/ready", timeout=2) as reply:
                return reply.status == 200
        except OSError:
            return False

    try:
        eventually_sync(ready, timeout=60, message="prometheus ready")
        yield made
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(root / "data", ignore_errors=True)
