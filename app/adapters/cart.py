"""Each shopper's cart: sku → quantity in one hash, kept for a while after its last change.

A cart is UI scratch state, not an aggregate: no command, no event. Checkout turns it into a
PlaceOrder and empties it.
"""

from __future__ import annotations

from redis.asyncio import Redis

from app.kernel import keys
from app.kernel.redis_types import text_dict


def _key(user: str) -> str:
    return keys.ui_state("cart", user)


class CartStore:
    def __init__(self, redis: Redis, ttl_seconds: int) -> None:
        self._redis = redis
        self._ttl = ttl_seconds

    async def lines(self, user: str) -> list[tuple[str, int]]:
        """(sku, quantity) of every line, by sku."""
        found = text_dict(await self._redis.hgetall(_key(user)))
        return sorted((sku, int(quantity)) for sku, quantity in found.items())

    async def count(self, user: str) -> int:
        """How many distinct skus the cart holds."""
        return int(await self._redis.hlen(_key(user)))

    async def add(self, user: str, sku: str, quantity: int, *, at_most: int) -> int:
        """`quantity` more of `sku`, up to `at_most` in all; the count of distinct skus."""
        key = _key(user)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(key, sku, quantity)
            pipe.hlen(key)
            pipe.expire(key, self._ttl)
            total, count, _ = await pipe.execute()
        if int(total) > at_most:
            await self._redis.hset(key, sku, at_most)
        return int(count)

    async def clear(self, user: str) -> None:
        await self._redis.delete(_key(user))
