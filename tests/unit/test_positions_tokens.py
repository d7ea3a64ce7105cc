"""Position tokens beyond the basics of test_positions.py: parsing edges, single, merge."""

from __future__ import annotations

import pytest

from app.kernel.positions import (
    ZERO,
    entry_ms,
    entry_time,
    format_position,
    format_stream_id,
    merge,
    parse,
    parse_stream_id,
    reached,
    single,
)


def test_parse_keeps_the_latest_entry_of_a_repeated_partition() -> None:
    assert parse("1:5-0,1:3-9,1:5-2") == {1: (5, 2)}


def test_parse_tolerates_spaces_around_parts_and_format_sorts() -> None:
    parsed = parse(" 3:5-0 , 0:3-1")
    assert parsed == {3: (5, 0), 0: (3, 1)}
    assert format_position(parsed) == "0:3-1,3:5-0"


def test_stream_ids_compare_by_millisecond_then_sequence() -> None:
    assert parse_stream_id("1732600000000-12") == (1732600000000, 12)
    assert parse_stream_id("7") == (7, 0)
    assert format_stream_id((7, 0)) == "7-0"
    assert parse_stream_id("10-0") > parse_stream_id("9-99")


def test_an_entry_s_time_comes_from_its_id_and_garbage_has_none() -> None:
    assert entry_ms("1732600000123-4") == 1732600000123
    assert entry_time("1732600000123-4") == 1732600000.123
    assert entry_ms("0-0") == 0
    for garbage in ("", "garbage", "-5", "12-x"):
        assert entry_ms(garbage) is None
        assert entry_time(garbage) == 0.0


def test_single_names_one_entry() -> None:
    token = single(2, "1732600000000-3")
    assert token == "2:1732600000000-3"
    assert parse(token) == {2: (1732600000000, 3)}


def test_the_largest_token_we_accept() -> None:
    token = ",".join(f"{p}:{10**19}-{10**19}" for p in range(64))
    token += "," + token  # a commit's own position after the one it must also cover
    assert len(token) <= 8192
    assert len(parse(token)) == 64
    with pytest.raises(ValueError):
        parse(token + ",1:1-1" * 500)


def test_reached_with_nothing_wanted_is_true() -> None:
    assert reached({}, {})
    assert reached({0: ZERO}, {})
    assert not reached({}, {0: (0, 1)})


@pytest.mark.parametrize(
    "bad", ["1:1-1-1", "1:-1-1", "a:1-1", "1:1_1", "1:1-", ",", "1:1-1,,2:1-1"]
)
def test_more_garbage_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse(bad)


def test_non_ascii_digits_are_refused() -> None:
    with pytest.raises(ValueError):
        parse("\u0661:1-1")


def test_merge_treats_a_missing_partition_as_not_reached() -> None:
    assert merge(parse("0:5-0"), parse("0:7-0,1:3-0")) == {0: (5, 0), 1: ZERO}
