from __future__ import annotations

import pytest

from app.kernel.positions import format_position, merge, parse, reached


def test_a_token_round_trips() -> None:
    token = "0:1732600000000-0,3:1732600000012-1"
    assert format_position(parse(token)) == token


def test_reached_compares_each_partition() -> None:
    wanted = parse("1:100-2")
    assert reached(parse("0:5-0,1:100-2"), wanted)
    assert reached(parse("1:101-0"), wanted)
    assert not reached(parse("1:100-1"), wanted)
    assert not reached(parse("0:999-0"), wanted)


def test_merge_keeps_the_earliest_checkpoint_per_partition() -> None:
    assert merge(parse("0:5-0,1:9-0"), parse("0:7-0,1:3-0")) == parse("0:5-0,1:3-0")


@pytest.mark.parametrize("bad", ["", "x", "1:abc", "1:1-1,", "999:1-1", "1-1"])
def test_garbage_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse(bad)
