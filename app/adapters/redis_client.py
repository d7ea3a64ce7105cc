"""Redis clients, made in a lifespan (never at import)."""

from __future__ import annotations

from redis.asyncio import Redis

SOCKET_TIMEOUT_SECONDS = 5.0
"""Blocking stream reads use BLOCK of about 1 s, well under this."""


def connect(url: str, *, max_connections: int = 200) -> Redis:
    return Redis.from_url(
        url,
        decode_responses=True,
        protocol=2,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=2.0,
        health_check_interval=15,
        max_connections=max_connections,
    )
