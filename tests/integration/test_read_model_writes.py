"""Recorded read-model writes, combined per key, leave Redis exactly as the same commands
sent one by one would: checked on random sequences of every command projections use."""

from __future__ import annotations

import random

from redis.asyncio import Redis

from app.kernel.read_model_writes import ReadModelWrites
from app.services import Services
from tests.support.kernel_catalog import snapshot

KEYS = ["rm:t:a", "rm:t:b", "rm:t:c"]
Step = tuple[str, str, tuple[object, ...]]


def random_steps(rng: random.Random, count: int) -> list[Step]:
    """Commands on a few keys, each key keeping to one type (as a projection's keys do)."""
    kinds = {"rm:t:a": "hash", "rm:t:b": "zset", "rm:t:c": "list"}
    steps: list[Step] = []
    for _ in range(count):
        key = rng.choice(KEYS)
        field = rng.choice("xyz")
        n = rng.randint(-3, 9)
        match kinds[key], rng.randint(0, 2):
            case "hash", 0:
                steps.append(("hset", key, (field, n)))
            case "hash", 1:
                steps.append(("hset_mapping", key, ({field: n, "w": f"v{n}"},)))
            case "hash", _:
                steps.append(("hincrby", key, (field, n)))
            case "zset", 0:
                steps.append(("zadd", key, ({field: float(n)},)))
            case "zset", 1:
                steps.append(("zrem", key, (field,)))
            case "zset", _:
                steps.append(("zincrby", key, (float(n), field)))
            case "list", 0:
                steps.append(("lpush", key, (f"{field}{n}", f"{n}")))
            case "list", 1:
                steps.append(("ltrim", key, (0, rng.randint(1, 4))))
            case "list", _:
                steps.append(("rpush", key, (f"{field}{n}",)))
    return steps


def record(writes: ReadModelWrites, step: Step) -> None:
    name, key, args = step
    if name == "hset_mapping":
        writes.hset(key, mapping=args[0])  # type: ignore[arg-type]
    elif name == "hset":
        writes.hset(key, str(args[0]), args[1])  # type: ignore[arg-type]
    else:
        getattr(writes, name)(key, *args)


async def direct(redis: Redis, steps: list[Step]) -> None:
    async with redis.pipeline(transaction=True) as tx:
        for name, key, args in steps:
            if name == "hset_mapping":
                tx.hset(key, mapping=args[0])  # type: ignore[arg-type]
            elif name == "hset":
                tx.hset(key, str(args[0]), args[1])  # type: ignore[arg-type]
            else:
                getattr(tx, name)(key, *args)
        await tx.execute()


async def test_combined_writes_equal_the_commands_one_by_one(services: Services) -> None:
    redis = services.read
    rng = random.Random(7)
    for _round in range(60):
        steps = random_steps(rng, rng.randint(1, 25))
        await redis.delete(*KEYS)
        await direct(redis, steps)
        expected = await snapshot(redis)
        await redis.delete(*KEYS)
        writes = ReadModelWrites()
        for step in steps:
            record(writes, step)
        async with redis.pipeline(transaction=True) as tx:
            writes.send(tx)
            await tx.execute()
        assert await snapshot(redis) == expected, steps
        assert len(writes) <= len(steps)


async def test_a_capped_list_pushed_to_often_is_one_push_and_one_trim() -> None:
    writes = ReadModelWrites()
    for n in range(10):
        writes.lpush("rm:t:c", n)
        writes.ltrim("rm:t:c", 0, 4)
        writes.hset("rm:t:a", mapping={"n": n})
    assert [(w.kind, w.key) for w in writes.writes] == [("lpush", "rm:t:c"), ("hset", "rm:t:a")]
