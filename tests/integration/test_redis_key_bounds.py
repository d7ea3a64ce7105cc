"""Every key in Redis has a bound (README, "Redis keys"): after the app's scenarios, each key
of the write and the read server belongs to exactly one family of the README's table (parsed:
the one list there is) and carries its bound — a TTL, a length within its cap, a stream its
consumers trim — so a key family without a bound fails here.

One stack for the module: a Redis for the write side and one for the read models, the web
process and every worker, with the integration streams' retention at a second (so their
trimming shows) and a request budget on commands (so its keys exist).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from app.config import load_settings
from tests.support.api_client import ALL_WORKERS, Storefront, running_storefront
from tests.support.key_families import Family, families, family_of
from tests.support.polling import eventually_sync
from tests.support.redis_server import RedisServer, running_redis
from tests.support.scenarios import (
    a_cart,
    a_catalog_watcher,
    a_traced_command_and_its_pages,
    dead_letter_retried_then_discarded,
    dead_letter_round_trip,
    end_to_end,
    rebuild_and_audit,
    refused_for_stock,
    sessions_and_the_login_throttle,
)

ENV = {
    "INTEGRATION_RETENTION_SECONDS": "1",
    "COMMAND_RATE_PER_MINUTE": "100000",
    "AUDIT_SECONDS": "0.5",
}
REACHED = (
    "{pN}:commands",
    "{pN}:integration",
    "ext:{gateway}:ledger:*",
    "ext:{gateway}:vault:<token>",
    "dlq:<group>:discarded",
    "ui:cart:<username>",
    "rm:sales:{pN}:per_minute:<minute>",
    "sessions:revoked",
    "budget:<name>:<client>:<minute>",
    "login:{<place>}:<scope>:<subject>",
    "traces:spans:<trace id>",
    "traces:browser:<command id>",
    "rebuilds:<projection>",
)
"""Families the scenarios are there to leave behind (so their bounds are checked for real)."""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Storefront, RedisServer]]:
    root = tmp_path_factory.mktemp("bounds")
    with (
        running_redis(root / "read-models") as read,
        running_storefront(root, workers=ALL_WORKERS, READ_REDIS_URL=read.url, **ENV) as made,
    ):
        yield made, read


def _entry_id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq)


def _needed_from(client: redis.Redis, stream: str) -> tuple[int, int] | None:
    """The first entry some group of the stream still needs: not acknowledged, or not yet
    delivered to it (None: the stream has no group, so nothing says what may go)."""
    needed = []
    for group in client.xinfo_groups(stream):
        if group["pending"]:
            needed.append(_entry_id(client.xpending(stream, group["name"])["min"]))
        else:
            ms, seq = _entry_id(group["last-delivered-id"])
            needed.append((ms, seq + 1))
    return min(needed) if needed else None


def _untrimmed(client: redis.Redis, stream: str, retention: float) -> str:
    """Why the stream holds an entry its bound says should be gone ("" if it does not)."""
    first = client.xrange(stream, count=1)
    if not first:
        return ""
    needed = _needed_from(client, stream)
    if needed is None:
        return f"{stream}: no consumer group trims it"
    kept = (int((time.time() - retention) * 1000), 0) if retention > 0 else needed
    oldest = _entry_id(first[0][0])
    if oldest < min(needed, kept):
        return f"{stream}: {first[0][0]} is acknowledged by every group and past its retention"
    return ""


def _expired(client: redis.Redis, key: str, retention: float) -> str:
    """Why a sorted set scored by time (ms) holds an entry past its retention ("" if not)."""
    oldest = client.zrange(key, 0, 0, withscores=True)
    if oldest and oldest[0][1] < (time.time() - retention) * 1000:
        return f"{key}: {oldest[0][0]} is past its retention"
    return ""


def _retention(family: Family) -> float:
    settings = load_settings(ENV)
    return sum(float(getattr(settings, name.lower())) for name in family.settings)


def _unbounded(client: redis.Redis, key: str, family: Family) -> str:
    """Why `key` does not carry its family's bound ("" if it does)."""
    match family.kind:
        case "TTL":
            ttl = client.pttl(key)
            return f"{key}: no TTL" if ttl == -1 else ""
        case "cap":
            length = {"stream": client.xlen, "list": client.llen, "zset": client.zcard}
            kind = client.type(key)
            if kind not in length:
                return f"{key}: a {kind} cannot be capped" if kind != "none" else ""
            size = int(length[kind](key))
            return f"{key}: {size} long, over its cap of {family.cap}" if size > family.cap else ""
        case "retention":
            if family.archived:
                return ""  # the event archive trims these (and checks its own)
            if client.type(key) == "zset":
                return _expired(client, key, _retention(family))
            return _untrimmed(client, key, _retention(family))
        case "data" | "fixed":
            return ""


def _scan(servers: dict[str, str], table: list[Family]) -> tuple[list[str], set[str]]:
    """Every key's problems, and the families found."""
    problems: list[str] = []
    seen: set[str] = set()
    for label, url in servers.items():
        client = redis.Redis.from_url(url, decode_responses=True)
        try:
            for key in client.scan_iter(count=1000):
                family = family_of(key, table)
                if family is None:
                    problems.append(f"{key} ({label}): in no family of the README's table")
                    continue
                seen.add(family.pattern)
                if family.server != label:
                    problems.append(f"{key}: on the {label} server, the table says {family.server}")
                problems += [found for found in [_unbounded(client, key, family)] if found]
        finally:
            client.close()
    return problems, seen


async def test_every_key_the_app_writes_belongs_to_a_family_and_carries_its_bound(
    stack: tuple[Storefront, RedisServer],
) -> None:
    storefront, read = stack
    write = storefront.redis.url
    await end_to_end(storefront)
    await refused_for_stock(storefront)
    await sessions_and_the_login_throttle(storefront)
    await a_cart(storefront)
    await a_catalog_watcher(storefront)
    await a_traced_command_and_its_pages(storefront)
    await dead_letter_round_trip(storefront, write)
    await dead_letter_retried_then_discarded(storefront, write)
    await rebuild_and_audit(storefront)

    table = families()
    servers = {"write": write, "read": read.url}
    problems, seen = eventually_sync(  # the streams' owners trim them every second
        lambda: _scan(servers, table),
        until=lambda found: not found[0],
        timeout=30,
        message="every key bounded",
    )
    assert problems == []
    assert set(REACHED) <= seen, sorted(set(REACHED) - seen)
