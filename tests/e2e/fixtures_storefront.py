"""Fixtures for the browser tests (API sessions, unique sku prefixes, patient expectations).

Test modules load them with `pytest_plugins = ["tests.e2e.fixtures_storefront"]`; the helpers
they use live in tests/e2e/helpers_storefront.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Stack
from tests.e2e.helpers_storefront import LIVE_TIMEOUT_MS, ApiClient, unique_prefix


@pytest.fixture
def patient_expect() -> Iterator[None]:
    """expect() waits up to LIVE_TIMEOUT_MS: these assertions ride on background workers."""
    expect.set_options(timeout=LIVE_TIMEOUT_MS)
    yield
    expect.set_options(timeout=None)


@pytest.fixture
def api(stack: Stack) -> Iterator[Callable[[str], ApiClient]]:
    """Make API sessions by username (`admin`, `alice`, `bob`); all closed afterwards."""
    made: list[ApiClient] = []

    def login(username: str) -> ApiClient:
        client = ApiClient(stack.base_url, username)
        made.append(client)
        return client

    yield login
    for client in made:
        client.close()


@pytest.fixture
def admin_api(api: Callable[[str], ApiClient]) -> ApiClient:
    return api("admin")


@pytest.fixture
def prefix() -> str:
    return unique_prefix()
