"""Long-running commands, per partition: those a process finishes after their commit
(PlaceOrder), from their start until their process has settled them; and `tracked` steps of a
process (a hold of stock), from their commit until the process has settled them.

Each commit that changes a long-running command's status scores it in `{pN}:running` with the
time of the change (a status write's `track`, commit.lua), its final status included; a
tracked step is scored when its commit lands (its request's `track`). A process's sweeper
asks for the ones whose last change is older than a deadline — still running (a step whose
write a failover lost, so its next event never comes) or finished and not yet checked —
looks at each from its aggregates' state, drives it on or repairs what it finds, and removes
what it settled. Entries older than the statuses' TTL are dropped on the way (their status
and their steps' dedup records are gone: nothing could be settled from them any more).

A removal names what showed the entry settled (its `Proof`s: records on the same partition),
and settle_running.lua removes it only if they are still there: the sweeper reads before it
writes, and a failover in between may set the partition back to a replica that never got
what it read (a hold's sale), while the removal lands on the new master. The entry then
stays, and the sweeper finds what is missing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from app.kernel import keys
from app.kernel.messages import FINAL_STATUSES
from app.kernel.partitions import tag
from app.kernel.redis_types import text_list
from app.kernel.scripts import load_script

_SETTLE = load_script(__file__, "settle_running.lua", FINAL_STATUSES=FINAL_STATUSES)


@dataclass(frozen=True)
class Proof:
    """What shows a running command settled, a hash on its partition with a `status`: it
    exists (a step's dedup record: the step landed) or, `final`, its status is final (a
    command's status: it ended)."""

    key: str
    final: bool = False


class RunningCommands:
    def __init__(self, redis: Redis, ttl_seconds: int) -> None:
        self._redis = redis
        self._ttl_ms = ttl_seconds * 1000

    async def due(self, partition: int, quiet_seconds: float, limit: int = 100) -> list[str]:
        """Command ids whose last change is over `quiet_seconds` old, oldest first."""
        key = keys.running(partition)
        now_ms = int(time.time() * 1000)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(key, "-inf", f"({now_ms - self._ttl_ms}")
            pipe.zrangebyscore(key, "-inf", now_ms - int(quiet_seconds * 1000), start=0, num=limit)
            _, found = await pipe.execute()
        return text_list(found)

    async def update(
        self,
        partition: int,
        settled: Mapping[str, Sequence[Proof]],
        again: Sequence[str] = (),
    ) -> int:
        """Remove each settled entry whose proofs still hold (none: at once); look at the
        others and `again` one deadline from now. One round trip; returns how many left."""
        if not settled and not again:
            return 0
        slot = f"{tag(partition)}:"
        numbers: dict[Proof, int] = {}
        for proofs in settled.values():
            for proof in proofs:
                assert proof.key.startswith(slot), (proof.key, partition)
                numbers.setdefault(proof, len(numbers) + 2)
        entries = [
            [command_id, [numbers[proof] for proof in proofs]]
            for command_id, proofs in settled.items()
        ]
        removed = await _SETTLE(
            self._redis,
            [keys.running(partition), *(proof.key for proof in numbers)],
            [
                int(time.time() * 1000),
                json.dumps(list(again)),
                json.dumps(entries),
                json.dumps([proof.final for proof in numbers]),
            ],
        )
        return int(removed)
