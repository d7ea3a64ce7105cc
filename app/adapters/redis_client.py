"""Redis clients, made in a lifespan (never at import).

`redis://` / `rediss://` (TLS) URLs give a client of one server; `redis+cluster://` (or
`rediss+cluster://`), or `cluster=True`, give redis-py's Cluster client. The kernel uses
only commands both clients share: every key one command or script touches is in one slot,
and every stream read names one stream.
"""

from __future__ import annotations

import importlib.util
from typing import Any, cast

import hiredis
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import Connection, SSLConnection

SOCKET_TIMEOUT_SECONDS = 5.0
"""Blocking stream reads use BLOCK of about 1 s, well under this."""
POOL_WAIT_SECONDS = 5.0
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


class _HiredisPacking:
    """Commands packed by hiredis (C) instead of redis-py's pure-Python packer, which costs
    ~30 µs per commit script call against ~3 µs."""

    def pack_command(self, *args: Any) -> list[bytes]:
        if isinstance(args[0], str) and " " in args[0]:  # e.g. "SCRIPT LOAD": two words
            args = (*args[0].split(), *args[1:])
        return [hiredis.pack_command(args)]


class FastConnection(_HiredisPacking, Connection):
    pass


class FastSSLConnection(_HiredisPacking, SSLConnection):
    pass


NO_SETINFO: dict[str, Any] = (
    {"driver_info": None}
    if importlib.util.find_spec("redis.driver_info")  # redis-py 7.1+; lib_name before
    else {"lib_name": None, "lib_version": None}
)
"""No CLIENT SETINFO on connect: a least-privilege ACL user may not run it (Valkey and newer
Redis log every refusal), and Redis 7.0 has no such command."""


def cluster_url(url: str) -> tuple[str, bool]:
    """(the URL redis-py understands, whether it names a Cluster)."""
    scheme, sep, rest = url.partition("://")
    if scheme in CLUSTER_SCHEMES:
        return f"{CLUSTER_SCHEMES[scheme]}{sep}{rest}", True
    return url, False


def connect(url: str, *, cluster: bool = False, max_connections: int = 200) -> Redis:
    """A long-lived client: connections are kept and reused; a burst waits for a free one
    instead of failing or opening more."""
    url, named_cluster = cluster_url(url)
    if cluster or named_cluster:
        client = RedisCluster.from_url(
            url,
            decode_responses=True,
            protocol=2,
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
            socket_connect_timeout=2.0,
            max_connections=max_connections,
            **NO_SETINFO,
        )
        # the kernel's calls are the subset the two clients share (see the module docstring)
        return cast(Redis, client)
    packing: dict[str, Any] = {}
    if url.startswith("redis://"):
        packing["connection_class"] = FastConnection
    elif url.startswith("rediss://"):
        packing["connection_class"] = FastSSLConnection
    pool = BlockingConnectionPool.from_url(
        url,
        **packing,
        max_connections=max_connections,
        timeout=POOL_WAIT_SECONDS,
        decode_responses=True,
        protocol=2,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=2.0,
        health_check_interval=15,
        **NO_SETINFO,
    )
    return Redis.from_pool(pool)
