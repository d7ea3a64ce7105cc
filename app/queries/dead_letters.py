"""Every consumer's dead letters in one list, as the console and the CLI show them (masked)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

import msgspec
from redis.asyncio import Redis

from app.kernel import keys
from app.kernel.dead_letters import DeadLetter, entry_type
from app.kernel.masking import masked_payload
from app.kernel.positions import parse_stream_id
from app.kernel.redis_types import stream_entries

SHOWN_PER_CONSUMER = 50


class Consumer(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def group(self) -> str: ...


class DeadLetterView(msgspec.Struct, frozen=True, kw_only=True):
    consumer: str
    kind: str
    """projection | process | queue"""
    letter_id: str
    entry_id: str
    """The entry it holds, in its consumer's stream of `partition`."""
    key: str
    """The aggregate (or other key) whose entries it holds back."""
    type: str
    """The event's type, or the command's."""
    error: str
    attempts: int
    at: float
    partition: int
    behind: str = ""
    """The letter it waits behind ("" for one that failed itself)."""
    payload: str
    """The entry, masked (no card data, tokens, e-mail addresses) and cut short."""


class ConsumerLetters(msgspec.Struct, frozen=True):
    consumer: str
    total: int
    letter_ids: list[str]
    """The ids of its letters shown."""

    @property
    def fingerprint(self) -> str:
        """Changes whenever its letters do (a "Retry all" form's idempotency key)."""
        return hashlib.sha256(",".join(self.letter_ids).encode()).hexdigest()[:16]


_letter = msgspec.json.Decoder(DeadLetter)


def view_of(consumer: Consumer, letter_id: str, letter: DeadLetter) -> DeadLetterView:
    kind, aggregate = entry_type(letter.fields)
    return DeadLetterView(
        consumer=consumer.name,
        kind=consumer.kind,
        letter_id=letter_id,
        entry_id=letter.entry_id,
        key=letter.key or aggregate,
        type=kind,
        error=letter.error[:300],
        attempts=letter.attempts,
        at=letter.at,
        partition=letter.partition,
        behind=letter.behind,
        payload=masked_payload(letter.fields),
    )


async def dead_letters(
    write: Redis, consumers: Sequence[Consumer], *, shown: int = SHOWN_PER_CONSUMER
) -> tuple[list[DeadLetterView], list[ConsumerLetters]]:
    """The oldest `shown` letters of each consumer (in the order of the entries they hold),
    and how many each has in all. One round trip."""
    async with write.pipeline(transaction=False) as pipe:
        for consumer in consumers:
            pipe.xrange(keys.dead_letters(consumer.group), count=shown)
            pipe.xlen(keys.dead_letters(consumer.group))
        replies = await pipe.execute()
    letters: list[DeadLetterView] = []
    counts: list[ConsumerLetters] = []
    for index, consumer in enumerate(consumers):
        stream = keys.dead_letters(consumer.group)
        found = [
            view_of(consumer, letter_id, _letter.decode(fields["e"]))
            for _, letter_id, fields in stream_entries([(stream, replies[2 * index])])
        ]
        found.sort(key=lambda v: (v.partition, parse_stream_id(v.entry_id)))
        letters += found
        total = int(replies[2 * index + 1] or 0)
        if total:
            counts.append(ConsumerLetters(consumer.name, total, [v.letter_id for v in found]))
    return letters, counts
