"""The Luhn check of card numbers."""

from __future__ import annotations

import pytest

from app.domain.rules import luhn_valid


@pytest.mark.parametrize(
    "number",
    [
        "4242424242424242",  # the approved test card
        "4000000000000002",  # the declined test card: declined by the gateway, not by Luhn
        "5555555555554444",
        "378282246310005",
        "6011111111111117",
        "4222222222222",  # 13 digits
        "4242424242424242428",  # 19 digits
        "79927398713",  # the textbook example
        "0",
    ],
)
def test_valid_numbers(number: str) -> None:
    assert luhn_valid(number) is True


@pytest.mark.parametrize(
    "number",
    [
        "4242424242424241",
        "4242424242424243",
        "4000000000000001",
        "79927398710",
        "4222222222223",
        "1",
    ],
)
def test_invalid_numbers(number: str) -> None:
    assert luhn_valid(number) is False


def test_a_swap_of_adjacent_digits_is_caught() -> None:
    assert luhn_valid("4242424242424242")
    assert not luhn_valid("2442424242424242")
