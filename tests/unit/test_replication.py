"""Acknowledgements that wait for replicas: the WAITs a pipeline carries, how their answers
are read, and what the settings and the start-up check say."""

from __future__ import annotations

from typing import Any, cast

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from app.config import load_settings
from app.kernel.replication import (
    NO_WAIT,
    Replication,
    ReplicationTimeout,
    Waits,
    add_waits,
    settle,
)
from app.kernel.server_info import check_replicas

ONE = Replication(replicas=1, timeout_ms=250)


class _Pipe:
    """Records what is queued, as a pipeline of one server would send it."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []

    def execute_command(self, *args: Any, **options: Any) -> None:
        self.sent.append(args)


SERVER = cast(Any, object())
"""A client of one server (not a Cluster): one connection per pipeline."""


async def test_nothing_is_sent_when_nothing_is_waited_for() -> None:
    pipe = _Pipe()
    assert await add_waits(SERVER, cast(Any, pipe), NO_WAIT, ["{p0}:x"]) is None
    assert pipe.sent == []
    assert settle(SERVER, NO_WAIT, None, ["ok"]) == ["ok"]


async def test_one_wait_follows_the_writes_of_a_pipeline_on_one_server() -> None:
    pipe = _Pipe()
    waits = await add_waits(SERVER, cast(Any, pipe), ONE, ["{p0}:a", "{p1}:b", "{p2}:c"])
    assert pipe.sent == [("WAIT", 1, 250)]
    assert waits == Waits(count=1)


def test_the_replies_come_back_without_the_waits_once_enough_replicas_confirmed() -> None:
    assert settle(SERVER, ONE, Waits(count=1), ["a", "b", 1]) == ["a", "b"]
    assert settle(SERVER, ONE, Waits(count=1), ["a", 2]) == ["a"]


def test_fewer_replicas_in_time_is_a_replication_timeout() -> None:
    with pytest.raises(ReplicationTimeout, match="0 of 1 replicas"):
        settle(SERVER, ONE, Waits(count=1), ["a", 0])


def test_a_wait_that_failed_raises_its_error() -> None:
    with pytest.raises(RedisConnectionError):
        settle(SERVER, ONE, Waits(count=1), ["a", RedisConnectionError("gone")])


@pytest.mark.parametrize(
    ("seen", "wanted", "warned"),
    [([1, 1, 1], 1, False), ([0], 0, False), ([1, 0, 1], 1, True), ([1], 2, True), ([], 1, True)],
)
def test_fewer_replicas_than_waited_for_is_a_warning(
    seen: list[int], wanted: int, warned: bool
) -> None:
    warning = check_replicas(seen, wanted, "REDIS_URL")
    assert bool(warning) is warned
    if warned:
        assert f"REDIS_WAIT_REPLICAS={wanted}" in warning and str(seen) in warning


def test_the_settings_of_replication() -> None:
    default = load_settings({})
    assert (default.redis_wait_replicas, default.redis_wait_timeout_ms) == (0, 1000)
    assert default.read_wait_replicas == 0
    both = load_settings({"REDIS_WAIT_REPLICAS": "1", "REDIS_WAIT_TIMEOUT_MS": "300"})
    assert (both.redis_wait_replicas, both.read_wait_replicas) == (1, 1)
    apart = load_settings({"REDIS_WAIT_REPLICAS": "1", "READ_REDIS_WAIT_REPLICAS": "0"})
    assert (apart.redis_wait_replicas, apart.read_wait_replicas) == (1, 0)
    assert load_settings({"SWEEP_AFTER_SECONDS": "2.5"}).sweep_after_seconds == 2.5
