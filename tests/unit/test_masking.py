"""Payloads shown to operators are masked: no card data, tokens, secrets or addresses."""

from __future__ import annotations

import msgspec

from app.kernel.masking import MASK, masked_payload

CARD = "4242424242424242"


def test_sensitive_names_are_masked_at_any_depth_even_inside_json_strings() -> None:
    envelope = {
        "type": "PlaceOrder",
        "sender": "alice",
        "body": {"card_last4": "4242", "card_token": "tok_abc", "lines": [{"sku": "MUG-1"}]},
    }
    shown = msgspec.json.decode(masked_payload({"c": msgspec.json.encode(envelope).decode()}))
    assert shown["c"]["body"] == {
        "card_last4": MASK,
        "card_token": MASK,
        "lines": [{"sku": "MUG-1"}],
    }
    assert shown["c"]["sender"] == "alice"


def test_card_numbers_and_addresses_are_masked_anywhere_but_stream_ids_are_kept() -> None:
    line = masked_payload({"e": f"from bob@example.com with {CARD} at 1796145031697-0"})
    assert CARD not in line and "bob@example.com" not in line
    assert "1796145031697-0" in line


def test_a_garbled_entry_is_masked_too() -> None:
    line = masked_payload({"e": '{"password": "hunter2", "email": "x@y.org", "n": 1, "trunc'})
    assert "hunter2" not in line and "x@y.org" not in line and '\\"n\\": 1' in line


def test_long_payloads_are_cut() -> None:
    line = masked_payload({"e": "x" * 5000}, limit=100)
    assert len(line) == 100 and line.endswith("…")
