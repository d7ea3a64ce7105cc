"""Outcome kinds: succeeded, rejected (a rule said no), failed (something went wrong)."""

from __future__ import annotations

import pytest

from app.domain.orders import REJECT_REASONS
from app.kernel.outcomes import KERNEL_FAILURES, OutcomeKinds, success_rate
from app.outcomes import OUTCOMES


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        ("succeeded", "", "succeeded"),
        ("failed", "insufficient_stock", "rejected"),
        ("failed", "payment_declined", "rejected"),
        ("failed", "order_not_cancellable", "rejected"),
        ("failed", "sku_exists", "rejected"),
        ("failed", "payment_unavailable", "failed"),  # the gateway never answered
        ("failed", "internal_error", "failed"),
        ("failed", "concurrency_conflict", "failed"),
        ("failed", "dead_letter_failed", "failed"),
        ("failed", "", "failed"),  # no code: nothing says a rule refused it
    ],
)
def test_each_outcome_has_its_kind(status: str, code: str, kind: str) -> None:
    assert OUTCOMES.of(status, code) == kind


def test_the_kernel_knows_its_failures_and_the_app_adds_its_own() -> None:
    assert OutcomeKinds().of("failed", "payment_unavailable") == "rejected"
    assert OUTCOMES.failures > KERNEL_FAILURES
    assert OUTCOMES.failures - KERNEL_FAILURES <= set(REJECT_REASONS)


def test_the_success_rate_leaves_rejections_apart() -> None:
    assert success_rate({"succeeded": 3, "rejected": 100, "failed": 1}) == 0.75
    assert success_rate({"rejected": 5}) is None
    assert success_rate({}) is None
