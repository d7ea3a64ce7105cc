"""COMMAND_RATE_PER_MINUTE: a per-client budget on POST /api/commands, 429 once spent."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.api_client import Storefront, assert_problem, running_storefront, send

BUDGET = 4
UNKNOWN = {"type": "DiscontinueProduct", "sku": "NO-SUCH-SKU"}


@pytest.fixture(scope="module")
def storefront(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storefront]:
    with running_storefront(
        tmp_path_factory.mktemp("budget"), COMMAND_RATE_PER_MINUTE=str(BUDGET)
    ) as made:
        yield made


async def spend_until_refused(client: httpx.AsyncClient) -> tuple[int, httpx.Response]:
    """Commands until one is 429: how many were answered before it, and the 429."""
    started = time.time()
    for answered in range(3 * BUDGET):
        response = await send(client, UNKNOWN)
        if response.status_code == 429:
            if int(started // 60) == int(time.time() // 60):  # no new minute began meanwhile
                assert answered == BUDGET
            return answered, response
    raise AssertionError("the budget was never spent")


async def test_a_user_over_the_budget_is_429_with_retry_after(
    admin: httpx.AsyncClient, bob: httpx.AsyncClient
) -> None:
    """The budget counts every command of a user, refused ones too; others are unaffected."""
    _answered, refused = await spend_until_refused(admin)
    body = assert_problem(refused, 429, "too_many_requests")
    assert str(BUDGET) in body["detail"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    other = await send(bob, UNKNOWN)
    assert other.status_code != 429, other.text


async def test_anonymous_clients_are_counted_by_address(storefront: Storefront) -> None:
    """Without a session the client is its address (X-Forwarded-For from a trusted proxy)."""
    async with storefront.client(headers={"X-Forwarded-For": "10.88.0.1"}) as anon:
        _answered, refused = await spend_until_refused(anon)
    assert_problem(refused, 429, "too_many_requests")
    async with storefront.client(headers={"X-Forwarded-For": "10.88.0.2"}) as elsewhere:
        assert_problem(await send(elsewhere, UNKNOWN), 401, "unauthenticated")
