"""Each shopper's cart: sku → quantity in one hash, kept for a while after its last change.

A cart is UI scratch state, not an aggregate: no command, no event. Checkout turns it into a
PlaceOrder and notes the order beside the cart (command id → its skus); the cart keeps its
lines until that order succeeds, so a declined card or missing stock leaves it there to try
again. Who reads the cart settles its orders first (app/web/cart.py): a succeeded one takes
its skus out, a failed one only its note.
"""

from __future__ import annotations

import msgspec
from redis.asyncio import Redis

from app.kernel import keys
from app.kernel.redis_types import text_dict

Lines = list[tuple[str, int]]
"""(sku, quantity) of every line, by sku."""
_skus = msgspec.json.Decoder(list[str])


def _key(user: str) -> str:
    return keys.ui_state("cart", user)


def _orders_key(user: str) -> str:
    return keys.ui_state("cart-orders", user)


class CartStore:
    def __init__(self, redis: Redis, ttl_seconds: int) -> None:
        self._redis = redis
        self._ttl = ttl_seconds

    async def lines(self, user: str) -> Lines:
        found = text_dict(await self._redis.hgetall(_key(user)))
        return sorted((sku, int(quantity)) for sku, quantity in found.items())

    async def count(self, user: str) -> int:
        """How many distinct skus the cart holds."""
        return int(await self._redis.hlen(_key(user)))

    async def snapshot(self, user: str) -> tuple[Lines, dict[str, list[str]]]:
        """The lines, and the orders placed from the cart not settled yet (command id → skus),
        in one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(_key(user))
            pipe.hgetall(_orders_key(user))
            found, placed = await pipe.execute()
        lines = sorted((sku, int(quantity)) for sku, quantity in text_dict(found).items())
        return lines, {command: _skus.decode(skus) for command, skus in text_dict(placed).items()}

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

    async def ordered(self, user: str, command_id: str, lines: Lines) -> None:
        """Checkout sent these lines as `command_id`: the cart becomes exactly them (the
        quantities as last edited), until the order's outcome settles it."""
        key, placed = _key(user), _orders_key(user)
        skus = msgspec.json.encode([sku for sku, _ in lines])
        async with self._redis.pipeline(transaction=False) as pipe:  # two keys, two slots
            pipe.hset(placed, command_id, skus)
            pipe.expire(placed, self._ttl)
            pipe.delete(key)
            if lines:
                pipe.hset(key, mapping=dict(lines))
                pipe.expire(key, self._ttl)
            await pipe.execute()

    async def settle(self, user: str, command_id: str, skus: list[str], *, succeeded: bool) -> None:
        """An order from the cart ended: if it succeeded, its skus leave the cart."""
        async with self._redis.pipeline(transaction=False) as pipe:
            if succeeded and skus:
                pipe.hdel(_key(user), *skus)
            pipe.hdel(_orders_key(user), command_id)
            await pipe.execute()

    async def clear(self, user: str) -> None:
        await self._redis.delete(_key(user))
