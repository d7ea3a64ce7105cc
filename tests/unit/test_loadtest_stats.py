"""The load test's arithmetic: percentiles, positions' commit times, step gaps."""

from __future__ import annotations

import pytest

from app.loadtest.stats import (
    commit_ms,
    epoch,
    percentile,
    step_gaps,
    summarize,
    transition_order,
)


def test_percentiles_interpolate_between_closest_ranks() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 0.0) == 1.0
    assert percentile(values, 0.5) == pytest.approx(50.5)
    assert percentile(values, 0.99) == pytest.approx(99.01)
    assert percentile(values, 1.0) == 100.0
    assert percentile([7.0], 0.99) == 7.0


def test_a_percentile_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError):
        percentile([], 0.5)


def test_a_summary_sorts_its_samples_and_rounds() -> None:
    summary = summarize([30.0, 10.0, 20.0, 40.0, 50.0])
    assert (summary.count, summary.p50, summary.max) == (5, 30.0, 50.0)
    assert summary.p90 == pytest.approx(46.0)


def test_a_summary_of_no_samples_has_no_percentiles() -> None:
    summary = summarize([])
    assert summary.count == 0
    assert summary.p50 is summary.p99 is summary.max is None


@pytest.mark.parametrize(
    ("position", "expected"),
    [
        ("2:1732600000000-3", 1732600000000),
        ("0:1732600000005-0,3:1732600000012-1", 1732600000012),
        (" 1:9-0 , 2:4-7", 9),
        (None, None),
        ("", None),
        ("1732600000000-3", None),
        ("a:1-0", None),
        ("0:1", None),
    ],
)
def test_the_commit_time_of_a_position_is_its_newest_entry_ms(
    position: str | None, expected: int | None
) -> None:
    assert commit_ms(position) == expected


def test_iso_instants_with_z_are_epoch_seconds() -> None:
    assert epoch("1970-01-01T00:00:01.500Z") == pytest.approx(1.5)


def test_step_gaps_span_a_missing_step() -> None:
    """A fast command has no `processing` step: the gap goes from accepted to the next one."""
    gaps = step_gaps(
        [
            ("accepted", "2026-01-01T00:00:00.000Z"),
            ("stock_reserved", "2026-01-01T00:00:00.004Z"),
            ("payment_captured", None),
            ("succeeded", "2026-01-01T00:00:00.010Z"),
        ]
    )
    assert [name for name, _ in gaps] == [
        "accepted → stock_reserved",
        "stock_reserved → succeeded",
    ]
    assert [round(ms, 3) for _, ms in gaps] == [4.0, 6.0]


def test_transitions_sort_in_pipeline_order() -> None:
    found = [
        "payment_captured → succeeded",
        "accepted → stock_reserved",
        "custom → step",
        "processing → stock_reserved",
        "accepted → processing",
        "stock_reserved → payment_captured",
    ]
    assert sorted(found, key=transition_order) == [
        "accepted → processing",
        "accepted → stock_reserved",
        "processing → stock_reserved",
        "stock_reserved → payment_captured",
        "payment_captured → succeeded",
        "custom → step",
    ]
