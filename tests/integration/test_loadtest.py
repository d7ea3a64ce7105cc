"""`storefront loadtest` against a real stack: a small run, on products it made for itself (by
default: the demo's catalog is left alone), whose JSON report shows every order succeeded
(none rejected, none failed), with step latencies and catalog pushes, and no socket dropped."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from app.loadtest.report import Report
from tests.support.api_client import ALL_WORKERS, Storefront, running_storefront
from tests.support.processes import ROOT


@pytest.fixture(scope="module")
def storefront(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storefront]:
    with running_storefront(tmp_path_factory.mktemp("loadtest"), workers=ALL_WORKERS) as made:
        yield made


def test_a_small_load_test_reports_every_order_and_push(
    storefront: Storefront, tmp_path: Path
) -> None:
    out = tmp_path / "report.json"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "loadtest",
            "--url",
            storefront.base_url,
            "--orders",
            "30",
            "--shoppers",
            "4",
            "--watchers",
            "5",
            "--json",
            str(out),
            "--quiet",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr
    assert "orders completed 30" in run.stdout
    assert "warning" not in run.stderr  # its own products: nothing of the catalog sold out
    report = msgspec.json.decode(out.read_bytes(), type=Report)
    assert report.accepts.attempts == report.accepts.accepted == 30
    assert report.orders.succeeded == 30
    assert report.orders.rejected == report.orders.failed == report.orders.unfinished == 0
    assert report.sampled == 30
    transitions = [step.transition for step in report.steps]
    assert transitions[0].startswith("accepted → ")
    assert any(t.endswith(" → succeeded") for t in transitions)
    assert all(step.ms.count > 0 for step in report.steps)
    assert report.end_to_end_ms.count == 30
    assert report.push.latency_ms.count > 0
    assert report.push.watchers_dropped == 0
    assert report.push.command_sockets_dropped == 0
