"""Markers by layer (unit, integration, e2e) and "no tests collected" as a failure."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

LAYERS = ("unit", "integration", "e2e")


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
    if session.testscollected == 0 or exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
