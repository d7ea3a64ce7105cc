"""Idempotency keys: which keys are accepted, and the HMAC fingerprint of a request."""

from __future__ import annotations

from typing import cast

import pytest
from redis.asyncio import Redis

from app.kernel.idempotency import IdempotencyRecord, IdempotencyStore, same_request, valid_key

BODY = b'{"card_number":"4242424242424242","lines":[{"quantity":1,"sku":"MUG-001"}]}'


def store(secret: str = "s" * 32) -> IdempotencyStore:
    """A store whose Redis is never touched: fingerprints are pure."""
    return IdempotencyStore(cast(Redis, object()), secret, 4)


@pytest.mark.parametrize(
    "key",
    ["a", "x" * 128, "!", "~", "0f8e-4c1b_9:2/=+?", "\x21" * 5, "\x7e" * 128, "ABC.def"],
)
def test_visible_ascii_keys_of_1_to_128_characters_are_valid(key: str) -> None:
    assert valid_key(key) is True


@pytest.mark.parametrize(
    "key",
    [
        "",
        "x" * 129,
        "has space",
        " leading",
        "trailing ",
        "tab\there",
        "\x7f",
        "\x00abc",
        "clé",
        "ключ",
        "emoji-\U0001f600",
    ],
)
def test_other_keys_are_refused(key: str) -> None:
    assert valid_key(key) is False


@pytest.mark.parametrize("key", ["abc\n", "x" * 128 + "\n"])
def test_a_key_with_a_trailing_newline_is_refused(key: str) -> None:
    assert valid_key(key) is False


def test_the_same_request_has_the_same_fingerprint() -> None:
    first = store().fingerprint("PlaceOrder", BODY)
    assert first == store().fingerprint("PlaceOrder", BODY)
    assert len(first) == 64
    assert set(first) <= set("0123456789abcdef"), first  # a SHA-256 in hex


@pytest.mark.parametrize(
    "other",
    [
        ("PlaceOrder", BODY.replace(b'"quantity":1', b'"quantity":2')),
        ("PlaceOrder", BODY + b" "),
        ("CancelOrder", BODY),
        ("PlaceOrde", b"r\x00" + BODY),  # the separator keeps type and body apart
    ],
)
def test_another_request_has_another_fingerprint(other: tuple[str, bytes]) -> None:
    assert store().fingerprint(*other) != store().fingerprint("PlaceOrder", BODY)


def test_another_secret_gives_another_fingerprint() -> None:
    assert store("a" * 32).fingerprint("PlaceOrder", BODY) != store("b" * 32).fingerprint(
        "PlaceOrder", BODY
    )


def test_the_fingerprint_does_not_contain_the_body() -> None:
    fingerprint = store().fingerprint("PlaceOrder", BODY)
    assert "4242" not in fingerprint
    assert "MUG" not in fingerprint
    assert BODY.hex() not in fingerprint


def _record(fingerprint: str, command_id: str = "c1-0") -> IdempotencyRecord:
    return IdempotencyRecord(fingerprint, command_id, "MUG-001", "sync")


def test_same_request_compares_fingerprints_only() -> None:
    fingerprint = store().fingerprint("PlaceOrder", BODY)
    other = fingerprint[:-1] + ("1" if fingerprint.endswith("0") else "0")
    assert same_request(_record(fingerprint), _record(fingerprint, command_id="c2-1"))
    assert not same_request(_record(fingerprint), _record(other))
