"""A projection's leases on every partition, held by a rebuild for its cut.

The projectors learn that their leases were taken at their next renewal; until then they may
still read entries (never beyond what their leases promised them: see leases.LeaseClock). So
the leases are kept that long after they were taken, even when the cut is done sooner: an
entry such a projector reads is then still pending when the next owner looks for pending
entries, never left behind.
"""

from __future__ import annotations

import contextlib
import time

from redis.asyncio import Redis

from app.kernel.handlers import INFRA_ERRORS
from app.kernel.leases import LEASE_TRUSTED, Leases

CUT_LEASE_MS = 30_000


class CutLeases:
    def __init__(
        self, write: Redis, owner: str, group: str, partitions: int, *, lease_ms: int
    ) -> None:
        """`lease_ms`: the leases of the projectors the cut takes them from."""
        self._write = write
        self._owner = owner
        self._group = group
        self._partitions = range(partitions)
        self._leases = Leases(write, owner, CUT_LEASE_MS)
        self._owners_trust = lease_ms / 1000 * LEASE_TRUSTED
        self._taken_at = 0.0

    async def take(self) -> None:
        """Each partition's lease (each projector stops after the batch in hand and waits)."""
        self._taken_at = time.monotonic()
        for partition in self._partitions:
            await self._leases.take(self._group, partition)

    async def renew(self, partition: int) -> None:
        """After a long catch-up of the partition."""
        await self._leases.take(self._group, partition)

    async def give_back(self) -> None:
        """Release the leases, or keep them until the projectors they were taken from have
        surely stopped reading (then they lapse by themselves)."""
        left_ms = int((self._taken_at + self._owners_trust - time.monotonic()) * 1000)
        keep = Leases(self._write, self._owner, max(1, left_ms))
        for partition in self._partitions:
            with contextlib.suppress(*INFRA_ERRORS):
                if left_ms > 0:
                    await keep.renew(self._group, partition)
                else:
                    await keep.release(self._group, partition)
