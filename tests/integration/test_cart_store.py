"""The cart adapter on a real Redis: lines by sku, a capped quantity, a TTL from the last
addition, and emptying."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from app.adapters.cart import CartStore
from app.adapters.redis_client import connect
from app.kernel import keys

TTL = 3600


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = connect(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def carts(redis: Redis) -> CartStore:
    return CartStore(redis, TTL)


async def test_additions_add_up_per_sku_and_lines_come_by_sku(carts: CartStore) -> None:
    assert await carts.add("alice", "TEA-002", 2, at_most=100) == 1
    assert await carts.add("alice", "MUG-001", 1, at_most=100) == 2
    assert await carts.add("alice", "TEA-002", 3, at_most=100) == 2
    assert await carts.lines("alice") == [("MUG-001", 1), ("TEA-002", 5)]
    assert await carts.count("alice") == 2
    assert await carts.lines("bob") == []
    assert await carts.count("bob") == 0


async def test_a_line_holds_at_most_the_cap(carts: CartStore) -> None:
    await carts.add("alice", "MUG-001", 60, at_most=100)
    await carts.add("alice", "MUG-001", 60, at_most=100)
    assert await carts.lines("alice") == [("MUG-001", 100)]


async def test_a_cart_expires_its_ttl_after_the_last_addition(
    carts: CartStore, redis: Redis
) -> None:
    key = keys.ui_state("cart", "alice")
    await carts.add("alice", "MUG-001", 1, at_most=100)
    await redis.expire(key, 5)
    await carts.add("alice", "TEA-002", 1, at_most=100)
    assert 5 < await redis.ttl(key) <= TTL  # set again to the full TTL


async def test_clearing_empties_only_that_cart(carts: CartStore) -> None:
    await carts.add("alice", "MUG-001", 1, at_most=100)
    await carts.add("bob", "MUG-001", 4, at_most=100)
    await carts.clear("alice")
    assert await carts.lines("alice") == []
    assert await carts.lines("bob") == [("MUG-001", 4)]


async def test_an_order_from_the_cart_is_noted_and_the_cart_becomes_its_lines(
    carts: CartStore,
) -> None:
    await carts.add("alice", "MUG-001", 1, at_most=100)
    await carts.add("alice", "TEA-002", 1, at_most=100)
    await carts.ordered("alice", "o1-0", [("MUG-001", 3)])  # tea set to 0 at checkout
    assert await carts.snapshot("alice") == ([("MUG-001", 3)], {"o1-0": ["MUG-001"]})


async def test_a_failed_order_leaves_the_cart_and_a_succeeded_one_takes_its_lines(
    carts: CartStore,
) -> None:
    await carts.ordered("alice", "o1-0", [("MUG-001", 3)])
    await carts.settle("alice", "o1-0", ["MUG-001"], succeeded=False)
    assert await carts.snapshot("alice") == ([("MUG-001", 3)], {})

    await carts.ordered("alice", "o2-0", [("MUG-001", 3)])
    await carts.add("alice", "PEN-003", 1, at_most=100)  # added while the order ran
    await carts.settle("alice", "o2-0", ["MUG-001"], succeeded=True)
    assert await carts.snapshot("alice") == ([("PEN-003", 1)], {})
