"""Users: argon2id password hashes, roles and a sensitive email, in Redis hashes."""

from __future__ import annotations

import asyncio
import re

import msgspec
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from redis.asyncio import Redis

from app.adapters.login_throttle import LoginAttempt, LoginThrottle
from app.kernel import keys
from app.kernel.redis_types import text_dict

USERNAME = re.compile(r"[a-z0-9_.-]{2,32}")
ROLES = frozenset({"admin", "customer"})


class User(msgspec.Struct, frozen=True):
    username: str
    roles: frozenset[str]
    email: str = ""


def mask_email(email: str) -> str:
    """alice@example.com → a***@example.com: what pages and logs may show."""
    name, at, domain = email.partition("@")
    if not at:
        return "***"
    return f"{name[:1]}***@{domain}"


class UserStore:
    def __init__(self, redis: Redis, hasher: PasswordHasher | None = None) -> None:
        self._redis = redis
        self.throttle = LoginThrottle(redis)
        self._hasher = hasher or PasswordHasher()
        self._dummy_hash = self._hasher.hash("not-a-password")

    async def create(
        self,
        username: str,
        password: str,
        roles: set[str],
        email: str = "",
        *,
        replace: bool = False,
    ) -> bool:
        """False if the username is taken (and `replace` is not set)."""
        if not USERNAME.fullmatch(username):
            raise ValueError("username: 2-32 of a-z 0-9 _ . -")
        if not roles <= ROLES or not roles:
            raise ValueError(f"roles must be a non-empty subset of {sorted(ROLES)}")
        if len(password) < 8:
            raise ValueError("password: at least 8 characters")
        password_hash = await asyncio.to_thread(self._hasher.hash, password)
        key = keys.user(username)
        if not replace and not await self._redis.hsetnx(key, "password_hash", password_hash):
            return False
        await self._redis.hset(
            key,
            mapping={
                "password_hash": password_hash,
                "roles": ",".join(sorted(roles)),
                "email": email,
            },
        )
        await self._redis.sadd(keys.users(), username)
        return True

    async def get(self, username: str) -> User | None:
        record = text_dict(await self._redis.hgetall(keys.user(username)))
        if not record.get("roles"):
            return None  # none, or a record `create` is still writing
        return User(
            username,
            frozenset(filter(None, record.get("roles", "").split(","))),
            record.get("email", ""),
        )

    async def sign_in(self, username: str, password: str, attempt: LoginAttempt) -> User | None:
        """Authenticate through the throttle: TooManyAttempts while `attempt` must wait."""
        await self.throttle.attempt(username, attempt)
        user = await self.authenticate(username, password)
        if user is None:
            await self.throttle.failed(username, attempt)
        else:
            await self.throttle.succeeded(username, attempt)
        return user

    async def authenticate(self, username: str, password: str) -> User | None:
        record = (
            text_dict(await self._redis.hgetall(keys.user(username)))
            if USERNAME.fullmatch(username)
            else {}
        )
        stored = record.get("password_hash", self._dummy_hash)
        try:
            await asyncio.to_thread(self._hasher.verify, stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if not record.get("roles"):
            return None  # none, or a record `create` is still writing (its roles come second)
        if self._hasher.check_needs_rehash(stored):
            new_hash = await asyncio.to_thread(self._hasher.hash, password)
            await self._redis.hset(keys.user(username), "password_hash", new_hash)
        roles = frozenset(filter(None, record.get("roles", "").split(",")))
        return User(username, roles, record.get("email", ""))
