"""The sign-in throttle's backoff, and how client addresses are counted."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from app.adapters.login_throttle import (
    FREE_PER_USER,
    LONGEST_WAIT_MS,
    TooManyAttempts,
    wait_after,
)
from app.web.signin import client_address


@pytest.mark.parametrize("attempts", [0, 1, FREE_PER_USER])
def test_the_free_attempts_never_wait(attempts: int) -> None:
    assert wait_after(attempts, FREE_PER_USER) == 0


def test_each_further_attempt_doubles_the_wait() -> None:
    waits = [wait_after(FREE_PER_USER + n, FREE_PER_USER) for n in range(1, 6)]
    assert waits == [1, 2, 4, 8, 16]


@pytest.mark.parametrize("attempts", [20, 100, 10**9])
def test_the_wait_never_exceeds_fifteen_minutes(attempts: int) -> None:
    assert wait_after(attempts, FREE_PER_USER) == LONGEST_WAIT_MS / 1000 == 900


def test_a_throttled_answer_says_when_to_try_again() -> None:
    refused = TooManyAttempts(7)
    assert (refused.status, refused.code) == (429, "too_many_attempts")
    assert refused.headers == {"Retry-After": "7"}
    assert "7 s" in refused.to_problem().detail


@pytest.mark.parametrize(
    "host, counted_as",
    [
        ("203.0.113.9", "203.0.113.9"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        ("not-an-address", "not-an-address"),
        ("", "unknown"),
    ],
)
def test_client_addresses_count_ipv6_by_its_64(host: str, counted_as: str) -> None:
    conn = SimpleNamespace(client=SimpleNamespace(host=host) if host else None)
    assert client_address(conn) == counted_as  # type: ignore[arg-type]
