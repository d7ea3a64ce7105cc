"""Sign-in throttle: exponential backoff, never a lock that someone else can set off.

Attempts count per (username, client address), and failures per client address. Each scope
allows some, then every further one makes the next attempt wait: 1 s, 2 s, 4 s … at most 15
minutes. A known device (a browser the user is signed in on, or signed in on before) is never
made to wait by anyone else's attempts: its attempts count on that device alone.
"""

from __future__ import annotations

import hashlib
import math

import msgspec
from redis.asyncio import Redis

from app.kernel import keys
from app.kernel.errors import ProblemError
from app.kernel.scripts import load_script

FIRST_WAIT_MS = 1000
LONGEST_WAIT_MS = 15 * 60 * 1000
FORGET_SECONDS = 3600
"""A scope's count is forgotten an hour after its last attempt."""
FREE_PER_USER = 5
"""Per (username, address): attempts before the backoff starts."""
FREE_PER_ADDRESS = 20
"""Failures per address, all usernames together (password spraying; people behind one NAT
share it, so only failures count)."""
FREE_PER_DEVICE = 10
_SCRIPT = load_script(__file__, "login_throttle.lua")


class LoginAttempt(msgspec.Struct, frozen=True):
    """Where a sign-in comes from: the client's address, and its device if it is known."""

    address: str
    device: str | None = None


class TooManyAttempts(ProblemError):
    status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "too_many_attempts", f"Too many failed sign-ins: try again in {retry_after} s"
        )
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}


def wait_after(attempts: int, free: int) -> float:
    """Seconds the next attempt waits once `attempts` were made in a scope allowing `free`."""
    over = attempts - free
    if over <= 0:
        return 0.0
    doubled: int = FIRST_WAIT_MS * 2 ** min(over - 1, 30)
    return min(LONGEST_WAIT_MS, doubled) / 1000


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


class LoginThrottle:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    def _scopes(self, username: str, attempt: LoginAttempt) -> list[tuple[str, str, int]]:
        """(count key, wait key, free attempts) per scope; the user's own scope first."""
        name = username[:64]
        if attempt.device is not None:
            subject = _digest(attempt.device, name)
            scopes = [(keys.login_throttle(subject, "device", subject), FREE_PER_DEVICE)]
        else:
            place = _digest(attempt.address)
            scopes = [
                (keys.login_throttle(place, "user", _digest(name, attempt.address)), FREE_PER_USER),
                (keys.login_throttle(place, "address", place), FREE_PER_ADDRESS),
            ]
        return [(key, f"{key}:wait", free) for key, free in scopes]

    async def _call(self, action: str, username: str, attempt: LoginAttempt) -> int:
        scopes = self._scopes(username, attempt)
        left = await _SCRIPT(
            self._redis,
            [key for count, wait, _ in scopes for key in (count, wait)],
            [
                action,
                FIRST_WAIT_MS,
                LONGEST_WAIT_MS,
                FORGET_SECONDS,
                *(free for *_, free in scopes),
            ],
        )
        return int(left)

    async def attempt(self, username: str, attempt: LoginAttempt) -> None:
        """Count an attempt; TooManyAttempts (with Retry-After) while a scope must wait."""
        left = await self._call("attempt", username, attempt)
        if left > 0:
            raise TooManyAttempts(max(1, math.ceil(left / 1000)))

    async def failed(self, username: str, attempt: LoginAttempt) -> None:
        await self._call("failed", username, attempt)

    async def succeeded(self, username: str, attempt: LoginAttempt) -> None:
        await self._call("succeeded", username, attempt)
