"""Redis clients, made in a lifespan (never at import)."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

SOCKET_TIMEOUT_SECONDS = 5.0
"""Blocking stream reads use BLOCK of about 1 s, well under this."""
POOL_WAIT_SECONDS = 5.0


def connect(url: str, *, max_connections: int = 200) -> Redis:
    """A client whose pool makes a burst wait for a free connection instead of failing."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=POOL_WAIT_SECONDS,
        decode_responses=True,
        protocol=2,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=2.0,
        health_check_interval=15,
    )
    return Redis.from_pool(pool)
