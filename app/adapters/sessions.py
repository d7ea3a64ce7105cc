"""Server-side sessions shared by HTTP and WebSockets: the cookie holds a random token only."""

from __future__ import annotations

import hashlib
import secrets

import msgspec
from redis.asyncio import Redis

from app.kernel import keys
from app.kernel.redis_types import text_dict

COOKIE = "sf_session"


class Session(msgspec.Struct, frozen=True):
    username: str
    roles: frozenset[str]
    csrf_token: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionStore:
    def __init__(self, redis: Redis, ttl_seconds: int) -> None:
        self._redis = redis
        self._ttl = ttl_seconds

    async def create(self, username: str, roles: frozenset[str]) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        session = Session(username, roles, secrets.token_urlsafe(24))
        key = keys.session(_digest(token))
        await self._redis.hset(
            key,
            mapping={
                "username": username,
                "roles": ",".join(sorted(roles)),
                "csrf_token": session.csrf_token,
            },
        )
        await self._redis.expire(key, self._ttl)
        return token, session

    async def get(self, token: str | None) -> Session | None:
        if not token or len(token) > 100:
            return None
        record = text_dict(await self._redis.hgetall(keys.session(_digest(token))))
        if not record:
            return None
        roles = frozenset(filter(None, record.get("roles", "").split(",")))
        return Session(record["username"], roles, record["csrf_token"])

    async def delete(self, token: str | None) -> None:
        if token:
            await self._redis.delete(keys.session(_digest(token)))
