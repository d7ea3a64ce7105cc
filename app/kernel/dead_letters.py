"""Dead letters: entries a consumer gave up on, parked so nothing after them is silently wrong.

An entry that keeps failing its handler (after retries with backoff) becomes a dead letter,
and its key (the aggregate, for events) is *parked* for that consumer: later entries of the
same key wait behind it as dead letters too, while every other key flows on. An operator
retries a letter (after a fix) or discards it (with a reason, journaled); either way the
entries waiting behind it are then applied in order.

Operators act through requests: the console's admin commands (or the CLI) write a request
for a letter, and the partition's owner — the only process that may apply its entries —
carries it out between batches, so parking and unparking never race.

Redis (write side), per consumer group:
    dlq:<group>                       stream of DeadLetter (a resolved letter is deleted)
    dlq:<group>:parked:<partition>    hash: key → id of the letter the key waits behind
    dlq:<group>:requests:<partition>  hash: letter id → LetterRequest
    dlq:<group>:outcomes              hash: request's command id → RequestOutcome (deleted
                                      once read; the hash expires a day after its last answer)
    dlq:<group>:discarded             capped stream: what was discarded, by whom, why
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import msgspec
from redis.asyncio import Redis

from app.kernel import keys
from app.kernel.positions import parse_stream_id
from app.kernel.redis_types import stream_entries, text, text_dict

DISCARDED_MAXLEN = 10_000
OUTCOMES_TTL_SECONDS = 24 * 3600
"""An answer nobody read (its command gave up waiting) goes with the hash, this long after
the last answer."""


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    group: str
    stream: str
    entry_id: str
    fields: dict[str, str]
    error: str
    at: float
    partition: int = -1
    key: str = ""
    """The entry's order key (e.g. `product:MUG-1`); "" when its order does not matter."""
    attempts: int = 0
    behind: str = ""
    """The id of the letter this one waits behind ("" for the letter that failed itself)."""


class LetterRequest(msgspec.Struct, frozen=True, kw_only=True):
    action: Literal["retry", "discard"]
    command_id: str
    by: str
    reason: str = ""


class RequestOutcome(msgspec.Struct, frozen=True):
    ok: bool
    detail: str = ""


class Discarded(msgspec.Struct, frozen=True, kw_only=True):
    letter_id: str
    letter: DeadLetter
    command_id: str
    by: str
    reason: str
    at: float


_letter = msgspec.json.Decoder(DeadLetter)
_request = msgspec.json.Decoder(LetterRequest)
_outcome = msgspec.json.Decoder(RequestOutcome)
_discarded = msgspec.json.Decoder(Discarded)


@dataclass(frozen=True)
class Letter:
    id: str
    letter: DeadLetter


class _Head(msgspec.Struct):
    type: str = ""
    aggregate_id: str = ""


_head = msgspec.json.Decoder(_Head)


def entry_type(fields: dict[str, str]) -> tuple[str, str]:
    """(type, aggregate) of a queued command (`c`) or an event (`t`/`a`, else `e`)."""
    if "t" in fields:
        return fields["t"], fields.get("a", "")
    for name in ("c", "e"):
        if name in fields:
            try:
                head = _head.decode(fields[name])
            except msgspec.DecodeError:
                return "(undecodable)", ""
            return head.type or "?", head.aggregate_id
    return "?", ""


class LetterFilter(msgspec.Struct, frozen=True):
    """Which letters a bulk action takes: of this entry type (exactly; "" any), whose error
    contains this text (any case; "" any)."""

    type: str = ""
    error: str = ""

    def matches(self, letter: DeadLetter) -> bool:
        return self.shows(entry_type(letter.fields)[0], letter.error)

    def shows(self, kind: str, error: str) -> bool:
        """Whether a letter of entry type `kind` failing with `error` is one it takes."""
        if self.type and kind != self.type:
            return False
        return not self.error or self.error.casefold() in error.casefold()


def _parked(group: str, partition: int) -> str:
    return f"{keys.dead_letters(group)}:parked:{partition}"


def _requests(group: str, partition: int) -> str:
    return f"{keys.dead_letters(group)}:requests:{partition}"


def discarded(group: str) -> str:
    return f"{keys.dead_letters(group)}:discarded"


def _outcomes(group: str) -> str:
    return f"{keys.dead_letters(group)}:outcomes"


def _entry_order(item: Letter) -> tuple[int, tuple[int, int]]:
    return item.letter.partition, parse_stream_id(item.letter.entry_id)


class DeadLetters:
    """One consumer group's dead letters."""

    def __init__(self, redis: Redis, group: str) -> None:
        self._redis = redis
        self.group = group

    async def add(self, letter: DeadLetter) -> str:
        """Write a letter; a failed keyed entry also parks its key. Returns the letter's id."""
        letter_id = text(
            await self._redis.xadd(
                keys.dead_letters(self.group), {"e": msgspec.json.encode(letter)}
            )
        )
        if letter.key and not letter.behind:
            await self._redis.hset(_parked(self.group, letter.partition), letter.key, letter_id)
        return letter_id

    async def parked(self, partition: int) -> dict[str, str]:
        return text_dict(await self._redis.hgetall(_parked(self.group, partition)))

    async def all(self) -> list[Letter]:
        """Every letter, in the order of the entries they hold (per partition)."""
        stream = keys.dead_letters(self.group)
        found = stream_entries([(stream, await self._redis.xrange(stream))])
        letters = [Letter(letter_id, _letter.decode(fields["e"])) for _, letter_id, fields in found]
        return sorted(letters, key=_entry_order)

    async def of_partition(self, partition: int) -> list[Letter]:
        return [item for item in await self.all() if item.letter.partition == partition]

    async def get(self, letter_id: str) -> DeadLetter | None:
        stream = keys.dead_letters(self.group)
        found = stream_entries([(stream, await self._redis.xrange(stream, letter_id, letter_id))])
        return _letter.decode(found[0][2]["e"]) if found else None

    async def request(self, partition: int, letter_id: str, request: LetterRequest) -> None:
        await self.request_all([(partition, letter_id, request)])

    async def request_all(self, requests: list[tuple[int, str, LetterRequest]]) -> None:
        """Requests for many letters (partition, letter id, request), in one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for partition, letter_id, request in requests:
                pipe.hset(_requests(self.group, partition), letter_id, msgspec.json.encode(request))
            await pipe.execute()

    async def requests(self, partition: int) -> dict[str, LetterRequest]:
        raw = text_dict(await self._redis.hgetall(_requests(self.group, partition)))
        return {letter_id: _request.decode(value) for letter_id, value in raw.items()}

    async def resolved(self, partition: int, letter_ids: list[str], unpark: str = "") -> None:
        """Letters applied (or discarded): gone, their requests too, and `unpark` flows again."""
        async with self._redis.pipeline(transaction=False) as pipe:
            if letter_ids:
                pipe.xdel(keys.dead_letters(self.group), *letter_ids)
                pipe.hdel(_requests(self.group, partition), *letter_ids)
            if unpark:
                pipe.hdel(_parked(self.group, partition), unpark)
            await pipe.execute()

    async def answer(
        self, partition: int, letter_id: str, request: LetterRequest, outcome: RequestOutcome
    ) -> None:
        """A request carried out (or refused): it is removed, and its command told how."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hdel(_requests(self.group, partition), letter_id)
            pipe.hset(_outcomes(self.group), request.command_id, msgspec.json.encode(outcome))
            pipe.expire(_outcomes(self.group), OUTCOMES_TTL_SECONDS)
            await pipe.execute()

    async def forget_outcomes(self, command_ids: list[str]) -> None:
        """Answers read by the command that asked: needed no more."""
        if command_ids:
            await self._redis.hdel(_outcomes(self.group), *command_ids)

    async def outcome(self, command_id: str) -> RequestOutcome | None:
        return (await self.outcomes([command_id]))[0]

    async def outcomes(self, command_ids: list[str]) -> list[RequestOutcome | None]:
        """How each request went (None: not carried out yet), in one round trip."""
        if not command_ids:
            return []
        raw = await self._redis.hmget(_outcomes(self.group), command_ids)
        return [_outcome.decode(value) if value else None for value in raw]

    async def repark(self, partition: int, key: str, letter_id: str) -> None:
        """`key` now waits behind another letter (the one that failed on retry)."""
        await self._redis.hset(_parked(self.group, partition), key, letter_id)

    async def failed_again(self, letter_id: str, letter: DeadLetter, error: str) -> str:
        """A retried letter failed again: it is written anew with the new error (the chain
        of a key keeps its order by the entries' own ids, not the letters')."""
        renewed = msgspec.structs.replace(
            letter, error=error, at=time.time(), attempts=letter.attempts + 1, behind=""
        )
        await self._redis.xdel(keys.dead_letters(self.group), letter_id)
        return await self.add(renewed)

    async def journal_discard(
        self, letter_id: str, letter: DeadLetter, request: LetterRequest
    ) -> None:
        record = Discarded(
            letter_id=letter_id,
            letter=letter,
            command_id=request.command_id,
            by=request.by,
            reason=request.reason,
            at=time.time(),
        )
        await self._redis.xadd(
            discarded(self.group),
            {"e": msgspec.json.encode(record)},
            maxlen=DISCARDED_MAXLEN,
            approximate=True,
        )

    async def discarded_entries(self) -> set[tuple[str, str]]:
        """(stream, entry id) of every entry an operator discarded (as far as the capped
        journal remembers): tools that replay a stream skip them too."""
        stream = discarded(self.group)
        found = stream_entries([(stream, await self._redis.xrange(stream))])
        records = [_discarded.decode(fields["e"]).letter for _, _, fields in found]
        return {(letter.stream, letter.entry_id) for letter in records}
