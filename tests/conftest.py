"""Markers by layer (unit, integration, e2e), "no tests collected" as a failure, and
Hypothesis kept out of the work tree (no example database; its caches in the temp dir)."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

from tests.support.fuzzing import FUZZ_COUNTS

LAYERS = ("unit", "integration", "e2e")

settings.register_profile("storefront", database=None, deadline=None, print_blob=True)
settings.load_profile("storefront")


def _layer(item: pytest.Item) -> int:
    parts = Path(str(item.path)).parts
    return next((i for i, layer in enumerate(LAYERS) if layer in parts), 0)


def pytest_configure(config: pytest.Config) -> None:
    """Hypothesis keeps its files (example database, caches) out of the work tree."""
    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "storefront-hypothesis")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its layer; run unit, then integration, then browser tests.

    Browser tests go last: Playwright's sync API keeps its own event loop for the session.
    """
    for item in items:
        item.add_marker(getattr(pytest.mark, LAYERS[_layer(item)]))
    items.sort(key=_layer)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    worker_output = getattr(session.config, "workeroutput", None)
    if worker_output is not None:  # a pytest-xdist worker: its fuzz counts go to the controller
        worker_output["fuzz_counts"] = dict(session.config.stash.get(FUZZ_COUNTS, Counter()))
        return
    if session.testscollected == 0 or exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """pytest-xdist: add a finished worker's fuzz counts to the controller's."""
    counts = node.workeroutput.get("fuzz_counts")
    if counts:
        node.config.stash.setdefault(FUZZ_COUNTS, Counter()).update(counts)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    counts = terminalreporter.config.stash.get(FUZZ_COUNTS, None)
    if counts:
        cases = ", ".join(f"{surface}: {n}" for surface, n in sorted(counts.items()))
        terminalreporter.write_line(f"fuzzed HTTP cases ({sum(counts.values())}): {cases}")
