"""Server-side sessions shared by HTTP and WebSockets: the cookie holds a random token only.

A web process keeps the sessions it has read in a bounded in-process cache, for a short
while, so a request costs no session round trip. A logout deletes the session and adds its
digest to a capped revocations stream that every web process follows, so it is gone from
every cache at once. The cache is used only while this process follows that stream, and is
emptied whenever following is interrupted (nothing missed can survive a Redis hiccup).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections import OrderedDict

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.kernel import keys
from app.kernel.backoff import RECONNECT
from app.kernel.redis_types import stream_entries, text_dict

log = logging.getLogger(__name__)

COOKIE = "sf_session"
CACHE_SECONDS = 30.0
CACHE_ENTRIES = 10_000
REVOCATIONS_MAXLEN = 10_000


class Session(msgspec.Struct, frozen=True):
    username: str
    roles: frozenset[str]
    csrf_token: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionStore:
    def __init__(
        self,
        redis: Redis,
        ttl_seconds: int,
        *,
        cache_seconds: float = CACHE_SECONDS,
        cache_entries: int = CACHE_ENTRIES,
    ) -> None:
        self._redis = redis
        self._ttl = ttl_seconds
        self._cache_seconds = cache_seconds
        self._cache_entries = cache_entries
        self._cache: OrderedDict[str, tuple[Session, float]] = OrderedDict()
        self._following = False

    async def create(self, username: str, roles: frozenset[str]) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        session = Session(username, roles, secrets.token_urlsafe(24))
        key = keys.session(_digest(token))
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(
                key,
                mapping={
                    "username": username,
                    "roles": ",".join(sorted(roles)),
                    "csrf_token": session.csrf_token,
                },
            )
            pipe.expire(key, self._ttl)
            await pipe.execute()
        return token, session

    async def get(self, token: str | None) -> Session | None:
        if not token or len(token) > 100:
            return None
        digest = _digest(token)
        cached = self._cache.get(digest) if self._following else None
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        record = text_dict(await self._redis.hgetall(keys.session(digest)))
        if not record:
            self._cache.pop(digest, None)
            return None
        roles = frozenset(filter(None, record.get("roles", "").split(",")))
        session = Session(record["username"], roles, record["csrf_token"])
        if self._following:
            self._remember(digest, session)
        return session

    def _remember(self, digest: str, session: Session) -> None:
        self._cache[digest] = (session, time.monotonic() + self._cache_seconds)
        self._cache.move_to_end(digest)
        while len(self._cache) > self._cache_entries:
            self._cache.popitem(last=False)

    async def delete(self, token: str | None) -> None:
        if not token:
            return
        digest = _digest(token)
        self._cache.pop(digest, None)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.delete(keys.session(digest))
            pipe.xadd(
                keys.session_revocations(),
                {"d": digest},
                maxlen=REVOCATIONS_MAXLEN,
                approximate=True,
            )
            await pipe.execute()

    async def follow_revocations(self, block_ms: int = 1000) -> None:
        """Run for the life of a web process: evict revoked sessions from the cache."""
        stream = keys.session_revocations()
        cursor: str | None = None
        failures = 0
        while True:
            try:
                if cursor is None:  # pin where we start, then let the cache be used
                    last = stream_entries([(stream, await self._redis.xrevrange(stream, count=1))])
                    cursor = last[0][1] if last else "0-0"
                    self._following = True
                reply = await self._redis.xread({stream: cursor}, count=500, block=block_ms)
                for _, entry_id, fields in stream_entries(reply):
                    cursor = entry_id
                    self._cache.pop(fields.get("d", ""), None)
                failures = 0
            except asyncio.CancelledError:
                self._following = False
                raise
            except (RedisError, OSError) as exc:
                log.warning("session revocations unavailable (%s); cache off until back", exc)
                self._following = False
                self._cache.clear()
                cursor = None
                await RECONNECT.sleep(failures)
                failures += 1
