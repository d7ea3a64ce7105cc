"""Idempotency-Key records: which command a (user, key) pair already started.

The record is claimed with SET NX before anything runs, and holds the command id, so a
replay finds the original command and answers from its status; the command's own dedup
record (written by its commit) makes sure it takes effect once. Fingerprints are HMACs, so
a body holding a card number leaves nothing that could be brute-forced back to it.
"""

from __future__ import annotations

import hmac
import re

import msgspec
from redis.asyncio import Redis

from app.kernel import keys

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


class IdempotencyStore:
    def __init__(self, redis: Redis, secret: str, ttl_seconds: int = IDEMPOTENCY_TTL_SECONDS):
        self._redis = redis
        self._secret = secret.encode()
        self._ttl = ttl_seconds

    def fingerprint(self, command_type: str, canonical_body: bytes) -> str:
        mac = hmac.new(self._secret, command_type.encode() + b"\x00" + canonical_body, "sha256")
        return mac.hexdigest()

    async def claim(
        self, user: str, key: str, record: IdempotencyRecord
    ) -> IdempotencyRecord | None:
        """None if the key is ours now; else the record of whoever claimed it first."""
        redis_key = keys.idempotency(user, key)
        claimed = await self._redis.set(
            redis_key, msgspec.json.encode(record), nx=True, ex=self._ttl
        )
        if claimed:
            return None
        raw = await self._redis.get(redis_key)
        if raw is None:  # expired between the two calls: try once more
            return await self.claim(user, key, record)
        return _decoder.decode(raw)


def same_request(a: IdempotencyRecord, b: IdempotencyRecord) -> bool:
    return hmac.compare_digest(a.fingerprint, b.fingerprint)
