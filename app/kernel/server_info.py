"""What the Redis (or Valkey) we run on is and does: version, Cluster, durability, replicas.

Nothing is assumed: every process reads this when it starts. An acknowledged command is
durable only if every node writes its append-only file and fsyncs it before answering
(`appendonly yes`, `appendfsync always`); where CONFIG is renamed away, INFO persistence
still says whether AOF is on, but not the fsync policy, which is then reported unknown.
A failover keeps what the replicas had: with REDIS_WAIT_REPLICAS=N every acknowledgement
waits for N of them (kernel/replication.py), so each master should have at least N
(`connected_slaves` of INFO replication); fewer is a warning, not a refusal — see
`check_replicas`.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import msgspec
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ResponseError

log = logging.getLogger(__name__)

Fsync = Literal["always", "everysec", "no", "unknown"]


class Durability(msgspec.Struct, frozen=True):
    appendonly: bool
    appendfsync: Fsync
    source: Literal["config", "info"]

    @property
    def acknowledged_writes_survive_a_crash(self) -> bool:
        return self.appendonly and self.appendfsync == "always"

    def warning(self) -> str:
        if not self.appendonly:
            return "append-only file is off: a Redis restart loses everything since its last save"
        if self.appendfsync != "always":
            return (
                f"appendfsync is {self.appendfsync}: a crash of the Redis host can lose "
                "commands acknowledged in the last second"
            )
        return ""


class ServerInfo(msgspec.Struct, frozen=True):
    engine: str
    version: str
    cluster: bool
    durability: Durability
    replicas: list[int] = []
    """Replicas connected to each master (the server, or each primary of a Cluster)."""

    @property
    def version_tuple(self) -> tuple[int, ...]:
        return tuple(int(p) for p in self.version.split(".")[:3] if p.isdigit())


async def _nodes_info(redis: Redis, section: str) -> list[dict[str, Any]]:
    if isinstance(redis, RedisCluster):
        replies = await redis.info(section, target_nodes=RedisCluster.PRIMARIES)
        return list(replies.values()) if isinstance(replies, dict) else [replies]
    return [await redis.info(section)]


async def _config(redis: Redis, name: str) -> list[str]:
    """The value of a CONFIG parameter on every node (primaries, on a Cluster)."""
    if isinstance(redis, RedisCluster):
        replies = await redis.config_get(name, target_nodes=RedisCluster.PRIMARIES)
        values = replies.values() if isinstance(replies, dict) else [replies]
        return [str(v.get(name, "")) if isinstance(v, dict) else str(v) for v in values]
    return [str((await redis.config_get(name)).get(name, ""))]


def _weakest(values: list[str]) -> Fsync:
    order: list[Fsync] = ["no", "everysec", "always"]
    known = [v for v in values if v in order]
    if not known or len(known) != len(values):
        return "unknown"
    return min(known, key=order.index)


async def durability(redis: Redis) -> Durability:
    try:
        appendonly = await _config(redis, "appendonly")
        appendfsync = await _config(redis, "appendfsync")
        return Durability(all(v == "yes" for v in appendonly), _weakest(appendfsync), "config")
    except ResponseError:  # CONFIG renamed or refused by an ACL: INFO still tells AOF
        infos = await _nodes_info(redis, "persistence")
        return Durability(all(int(i.get("aof_enabled", 0)) == 1 for i in infos), "unknown", "info")


async def server_info(redis: Redis) -> ServerInfo:
    (info, *_) = await _nodes_info(redis, "server")
    engine = str(info.get("server_name") or "redis")
    version = str(info.get("valkey_version") or info.get("redis_version") or "0")
    return ServerInfo(
        engine=engine,
        version=version,
        cluster=isinstance(redis, RedisCluster),
        durability=await durability(redis),
        replicas=await replicas(redis),
    )


async def replicas(redis: Redis) -> list[int]:
    """INFO replication of every master: how many replicas each has connected."""
    return [int(i.get("connected_slaves") or 0) for i in await _nodes_info(redis, "replication")]


def check_replicas(seen: list[int], wanted: int, where: str = "Redis") -> str:
    """The warning to show ("" when all is well) when a master has fewer replicas than each
    acknowledgement waits for: until they are there, every acknowledgement times out
    (`503 replication_timeout`, workers retrying). Not a refusal to start, even in
    production: replicas come and go while processes run (a replica restarting, a failover
    that leaves a master without one), and a process refusing to start whenever that happens
    would turn a replica's maintenance into an outage; the answers are retryable, and every
    process shows the warning on the status page."""
    if not wanted or min(seen, default=0) >= wanted:
        return ""
    return (
        f"REDIS_WAIT_REPLICAS={wanted}, but the masters of {where} have {seen} replicas: "
        "acknowledgements time out until they are there"
    )


class Memory(msgspec.Struct, frozen=True):
    """A master's memory: `used` bytes, of at most `max` (0: no limit set)."""

    used: int
    max: int


async def memory(redis: Redis) -> list[Memory]:
    """INFO memory of every master (the server, or each primary of a Cluster)."""
    return [
        Memory(int(i.get("used_memory") or 0), int(i.get("maxmemory") or 0))
        for i in await _nodes_info(redis, "memory")
    ]


class NotDurable(RuntimeError):
    """Production refuses to run where acknowledged commands would not survive a restart."""


def check_durability(info: ServerInfo, *, production: bool) -> str:
    """Refuse (production, AOF off) or return the warning to show ("" when all is well)."""
    warning = info.durability.warning()
    if production and not info.durability.appendonly:
        raise NotDurable(f"{info.engine} {info.version}: {warning}; set appendonly yes")
    if warning:
        log.warning("%s %s: %s", info.engine, info.version, warning)
    return warning
