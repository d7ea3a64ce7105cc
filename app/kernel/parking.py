"""The owner's side of dead letters for one (consumer group, partition).

The owner of a partition is the only process that applies its entries, so it alone parks
keys (when an entry fails for good), holds back later entries of a parked key, and carries
out operators' requests (retry, discard) between batches.
"""

from __future__ import annotations

import logging
import time

from redis.asyncio import Redis

from app.kernel.dead_letters import DeadLetter, DeadLetters, Letter, LetterRequest, RequestOutcome
from app.kernel.handlers import INFRA_ERRORS, Entry, PartitionHandler, order_key, replay

log = logging.getLogger(__name__)

SERVE_EVERY_SECONDS = 1.0


class Parking:
    def __init__(self, redis: Redis, handler: PartitionHandler, partition: int) -> None:
        self._letters = DeadLetters(redis, handler.group)
        self._handler = handler
        self._partition = partition
        self._stream = handler.stream(partition)
        self.parked: dict[str, str] = {}
        """Key → id of the letter it waits behind."""
        self._has_letters = False
        self._served_at = 0.0

    async def load(self) -> None:
        """What this partition's previous owners left parked (taking a partition over)."""
        self.parked = await self._letters.parked(self._partition)
        self._has_letters = bool(self.parked) or bool(
            await self._letters.of_partition(self._partition)
        )

    def held(self, entry: Entry) -> bool:
        key = order_key(self._handler, entry)
        return key is not None and key in self.parked

    async def hold(self, entries: list[Entry]) -> list[Entry]:
        """Set aside the entries of parked keys (as letters waiting behind their key's);
        the others are returned, to be applied."""
        if not self.parked:  # the usual case: no entry's key needs to be worked out
            return entries
        free: list[Entry] = []
        for entry in entries:
            key = order_key(self._handler, entry)
            if key is None or key not in self.parked:
                free.append(entry)
                continue
            await self._letters.add(
                DeadLetter(
                    group=self._handler.group,
                    stream=self._stream,
                    entry_id=entry.id,
                    fields=entry.fields,
                    error=f"waiting behind a failed entry of {key}",
                    at=time.time(),
                    partition=self._partition,
                    key=key,
                    behind=self.parked[key],
                )
            )
        return free

    async def give_up(self, entry: Entry, error: str, attempts: int) -> None:
        """An entry that kept failing: a dead letter, and its key parked behind it."""
        key = order_key(self._handler, entry) or ""
        letter_id = await self._letters.add(
            DeadLetter(
                group=self._handler.group,
                stream=self._stream,
                entry_id=entry.id,
                fields=entry.fields,
                error=error,
                at=time.time(),
                partition=self._partition,
                key=key,
                attempts=attempts,
            )
        )
        if key:
            self.parked[key] = letter_id
        self._has_letters = True
        log.error(
            "%s: entry %s of %s dead-lettered%s: %s",
            self._handler.group,
            entry.id,
            self._stream,
            f" ({key} parked behind it)" if key else "",
            error,
        )

    async def serve(self) -> None:
        """Carry out operators' requests for this partition's letters (at most every second)."""
        if not self._has_letters or time.monotonic() - self._served_at < SERVE_EVERY_SECONDS:
            return
        self._served_at = time.monotonic()
        requests = await self._letters.requests(self._partition)
        for letter_id, request in requests.items():
            await self._carry_out(letter_id, request)
        if not requests:
            self._has_letters = bool(self.parked) or bool(
                await self._letters.of_partition(self._partition)
            )

    async def _carry_out(self, letter_id: str, request: LetterRequest) -> None:
        letter = await self._letters.get(letter_id)
        if letter is None:
            outcome = RequestOutcome(False, "no such dead letter (already resolved?)")
        elif request.action == "discard":
            outcome = await self._discard(letter_id, letter, request)
        else:
            outcome = await self._retry(Letter(letter_id, letter))
        await self._letters.answer(self._partition, letter_id, request, outcome)

    async def _chain(self, key: str) -> list[Letter]:
        """A key's letters in the order of their entries: the failed one first."""
        mine = await self._letters.of_partition(self._partition)  # in entry order
        return [item for item in mine if item.letter.key == key]

    async def _discard(
        self, letter_id: str, letter: DeadLetter, request: LetterRequest
    ) -> RequestOutcome:
        await self._letters.journal_discard(letter_id, letter, request)
        await self._letters.resolved(self._partition, [letter_id])
        if letter.key and self.parked.get(letter.key) == letter_id:
            waiting = await self._chain(letter.key)
            return await self._apply_chain(letter.key, waiting, discarded=True)
        return RequestOutcome(True, "discarded")

    async def _retry(self, item: Letter) -> RequestOutcome:
        key = item.letter.key
        chain = await self._chain(key) if key else [item]
        return await self._apply_chain(key, chain)

    async def _apply_chain(
        self, key: str, chain: list[Letter], *, discarded: bool = False
    ) -> RequestOutcome:
        """Apply letters in order; the first that fails again parks its key anew."""
        applied: list[str] = []
        for item in chain:
            entry = Entry(item.letter.entry_id, self._partition, item.letter.fields)
            try:
                await replay(self._handler, self._partition, [entry])
            except INFRA_ERRORS:
                await self._letters.resolved(self._partition, applied)
                raise
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                renewed = await self._letters.failed_again(item.id, item.letter, error)
                if key:
                    self.parked[key] = renewed
                    await self._letters.repark(self._partition, key, renewed)
                await self._letters.resolved(self._partition, applied)
                return RequestOutcome(False, f"failed again: {error}")
            applied.append(item.id)
        self.parked.pop(key, None)
        await self._letters.resolved(self._partition, applied, unpark=key)
        done = f"{len(applied)} entr{'y' if len(applied) == 1 else 'ies'} applied"
        return RequestOutcome(True, f"discarded; {done}" if discarded else done)
