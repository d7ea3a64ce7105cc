"""Partitions: stable routing of aggregates, and command ids that name their partition."""

from __future__ import annotations

import re

import pytest

from app.kernel import keys
from app.kernel.partitions import (
    command_id_for,
    new_id,
    partition_of,
    partition_of_command,
    tag,
    tagged_partition,
)

KEYS = ["MUG-001", "TEA-002", "o" + "0" * 28, "", "é-unicode", "x" * 300]


@pytest.mark.parametrize("partitions", [1, 2, 4, 7, 64])
def test_partition_of_is_within_range(partitions: int) -> None:
    for index in range(500):
        assert 0 <= partition_of(f"SKU-{index}", partitions) < partitions
    for key in KEYS:
        assert 0 <= partition_of(key, partitions) < partitions


@pytest.mark.parametrize(
    "key, expected",
    [
        ("MUG-001", (0, 5, 32)),
        ("TEA-002", (0, 2, 60)),
        ("o0123456789abcdef0123456789ab", (1, 6, 1)),
    ],
)
def test_partition_of_is_stable_across_processes(key: str, expected: tuple[int, ...]) -> None:
    """A CRC32, not Python's salted hash(): these values must never change."""
    assert tuple(partition_of(key, count) for count in (4, 7, 64)) == expected


def test_one_partition_takes_everything() -> None:
    assert {partition_of(key, 1) for key in KEYS} == {0}


def test_keys_spread_over_partitions() -> None:
    seen = {partition_of(f"SKU-{index:04d}", 8) for index in range(200)}
    assert seen == set(range(8))


def test_tag_is_a_redis_cluster_hash_tag() -> None:
    assert tag(3) == "{p3}"
    assert tag(0) == "{p0}"


def test_new_ids_are_time_ordered_hex_and_unique() -> None:
    ids = [new_id("o") for _ in range(50)]
    assert all(re.fullmatch(r"o[0-9a-f]{28}", value) for value in ids)
    assert len(set(ids)) == 50
    assert [value[:13] for value in ids] == sorted(value[:13] for value in ids)
    assert re.fullmatch(r"[0-9a-f]{28}", new_id())


@pytest.mark.parametrize(
    "base",
    [
        None,
        "018f3a2b4c5d1234567890abcdef",
        "o0123456789abcdef0123456789ab.reserve.MUG-001",  # fulfilment: sku in upper case
        "o0123456789abcdef0123456789ab.return.A-1-2",  # a sku ending in digits after dashes
        "o0123456789abcdef0123456789ab.commit.---",
        "018f3a2b4c5d1234567890abcdef-3.9999",  # an import row: its command id, a dot, the row
        "seed.mug-001",
        "X" * 200,
    ],
)
@pytest.mark.parametrize("partitions, partition", [(1, 0), (4, 3), (16, 10), (64, 63)])
def test_command_ids_round_trip(base: str | None, partitions: int, partition: int) -> None:
    command_id = command_id_for(partition, base)
    if base is not None:
        assert command_id == f"{base}-{partition}"
    assert partition_of_command(command_id, partitions) == partition


def test_a_partition_at_or_over_the_count_is_refused() -> None:
    assert partition_of_command(command_id_for(4, "abc"), 4) is None
    assert partition_of_command(command_id_for(63, "abc"), 8) is None
    assert partition_of_command(command_id_for(3, "abc"), 4) == 3


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "-1",
        "abc",
        "abc-",
        "abc-x",
        "abc-123",  # three digits: more partitions than a deploy may have
        "-abc-1",
        ".abc-1",
        "abc 1-1",
        "abc/1-1",
        "abc-1 ",
        " abc-1",
        "a" * 202 + "-1",
        "ab\u00e9-1",
    ],
)
def test_garbage_has_no_partition(garbage: str) -> None:
    assert partition_of_command(garbage, 4) is None


def test_a_base_ending_in_a_dash_still_round_trips() -> None:
    assert partition_of_command(command_id_for(1, "abc-"), 4) == 1


@pytest.mark.parametrize("garbage", ["abc-1\n", "abc-\u0661"], ids=["newline", "arabic-digit"])
def test_look_alike_ids_are_garbage(garbage: str) -> None:
    assert partition_of_command(garbage, 4) is None


@pytest.mark.parametrize("partition", [0, 7, 63])
def test_a_keys_tag_names_its_partition_whatever_comes_before_or_after(partition: int) -> None:
    for key in (
        keys.checkpoint("catalog", partition),
        keys.shadow(keys.read_model("catalog", partition, "product", "{SKU}")),
        keys.events(partition),
    ):
        assert tagged_partition(key) == partition, key
