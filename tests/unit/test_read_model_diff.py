"""A rebuild's diff, taken a partition at a time and added up."""

from __future__ import annotations

from app.kernel import keys
from app.kernel.read_model_diff import Diff, KeyDifference, by_partition, merged_diffs


def test_keys_are_grouped_by_the_partition_of_their_tag() -> None:
    names = {keys.read_model("catalog", p, "product", sku) for p in (0, 1, 1, 3) for sku in "ab"}
    grouped = by_partition(names)
    assert sorted(grouped) == [0, 1, 3]
    assert grouped[1] == {keys.read_model("catalog", 1, "product", s) for s in "ab"}


def test_the_partitions_diffs_add_up_to_one() -> None:
    same = Diff(live_keys=3, shadow_keys=3)
    worse = Diff(
        live_keys=5,
        shadow_keys=4,
        only_live=1,
        differing=2,
        sample=[KeyDifference("k", "only live")],
    )
    total = merged_diffs([same, worse, same])
    assert (total.live_keys, total.shadow_keys, total.only_live, total.differing) == (11, 10, 1, 2)
    assert total.sample == [KeyDifference("k", "only live")]
    assert not total.same
    assert merged_diffs([same, same]).same
