"""Idempotency-Key records: which command a (user, key) pair already started.

The record is claimed with SET NX before anything runs, and holds the command id, so a
replay finds the original command and answers from its status; the command's own dedup
record (written by its commit) makes sure it takes effect once. Fingerprints are HMACs, so
a body holding a card number leaves nothing that could be brute-forced back to it.

A record lives in the partition its (user, key) digest picks, so it can be claimed in the
same script that enqueues an async command of that partition.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass

import msgspec
from redis.asyncio import Redis

from app.kernel import keys
from app.kernel.partitions import partition_of
from app.kernel.replication import NO_WAIT, Replication, add_waits, settle

IDEMPOTENCY_TTL_SECONDS = 24 * 3600
_KEY = re.compile(r"[\x21-\x7e]{1,128}")


def valid_key(key: str) -> bool:
    return _KEY.fullmatch(key) is not None


class IdempotencyRecord(msgspec.Struct, frozen=True):
    fingerprint: str
    command_id: str
    aggregate_id: str
    mode: str


_decoder = msgspec.json.Decoder(IdempotencyRecord)


def decode_record(raw: str | bytes) -> IdempotencyRecord:
    return _decoder.decode(raw)


@dataclass(frozen=True)
class IdempotencySlot:
    """Where a (user, key) claim lives."""

    partition: int
    key: str


class IdempotencyStore:
    def __init__(
        self,
        redis: Redis,
        secret: str,
        partitions: int,
        ttl_seconds: int = IDEMPOTENCY_TTL_SECONDS,
        replication: Replication = NO_WAIT,
    ):
        self._redis = redis
        self._secret = secret.encode()
        self._partitions = partitions
        self.ttl = ttl_seconds
        self._replication = replication

    def fingerprint(self, command_type: str, canonical_body: bytes) -> str:
        mac = hmac.new(self._secret, command_type.encode() + b"\x00" + canonical_body, "sha256")
        return mac.hexdigest()

    def slot(self, user: str, key: str) -> IdempotencySlot:
        digest = keys.idempotency_digest(user, key)
        partition = partition_of(digest, self._partitions)
        return IdempotencySlot(partition, keys.idempotency(partition, digest))

    async def claim(
        self, slot: IdempotencySlot, record: IdempotencyRecord
    ) -> IdempotencyRecord | None:
        """None if the key is ours now; else the record of whoever claimed it first.

        With replication on, the claim is confirmed by its replicas in the same round trip
        (else ReplicationTimeout, before anything ran): a claim lost in a failover would let
        a retry run the command a second time."""
        if self._replication.on:
            return await self._claim_replicated(slot, record)
        claimed = await self._redis.set(slot.key, msgspec.json.encode(record), nx=True, ex=self.ttl)
        if claimed:
            return None
        raw = await self._redis.get(slot.key)
        if raw is None:  # expired between the two calls: try once more
            return await self.claim(slot, record)
        return decode_record(raw)

    async def _claim_replicated(
        self, slot: IdempotencySlot, record: IdempotencyRecord
    ) -> IdempotencyRecord | None:
        value = msgspec.json.encode(record)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(slot.key, value, nx=True, ex=self.ttl, get=True)
            waits = await add_waits(self._redis, pipe, self._replication, [slot.key])
            replies = await pipe.execute(raise_on_error=False)
        (previous,) = settle(self._redis, self._replication, waits, replies)
        if isinstance(previous, Exception):
            raise previous
        return None if previous is None else decode_record(previous)


def same_request(a: IdempotencyRecord, b: IdempotencyRecord) -> bool:
    return hmac.compare_digest(a.fingerprint, b.fingerprint)
