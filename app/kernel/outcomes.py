"""How a finished command came out, for people and dashboards: three kinds.

A command's status stays what the API says (`succeeded`, or `failed` with its problem); the
kind classifies it: **succeeded**; **rejected**, a business rule said no (a CommandRejected,
a declined card, not enough stock) — the system worked; **failed**, something went wrong (an
error, a timeout, a lost race, a request an owner never carried out). A success rate counts
succeeded over succeeded + failed: rejections are shown apart and do not lower it.

A refusal is a rejection unless its code is a failure: the kernel's own failure codes, and
whatever the application declares (e.g. a payment service that never answered).
"""

from __future__ import annotations

from typing import Literal, get_args

import msgspec

OutcomeKind = Literal["succeeded", "rejected", "failed"]
OUTCOME_KINDS: tuple[OutcomeKind, ...] = get_args(OutcomeKind)

KERNEL_FAILURES = frozenset(
    {
        "internal_error",
        "unavailable",
        "overloaded",
        "concurrency_conflict",
        "dead_letter_failed",
        "rebuild_failed",
    }
)
"""The kernel's codes for something that went wrong (not a rule saying no)."""


class OutcomeKinds(msgspec.Struct, frozen=True):
    failures: frozenset[str] = KERNEL_FAILURES
    """Error codes that are failures; every other refusal is a rejection."""

    def of(self, status: str, error_code: str = "") -> OutcomeKind:
        if status == "succeeded":
            return "succeeded"
        if error_code and error_code not in self.failures:
            return "rejected"
        return "failed"

    def with_failures(self, codes: frozenset[str]) -> OutcomeKinds:
        return OutcomeKinds(self.failures | codes)


def success_rate(counts: dict[str, int]) -> float | None:
    """succeeded / (succeeded + failed); None when neither happened."""
    succeeded, failed = counts.get("succeeded", 0), counts.get("failed", 0)
    return round(succeeded / (succeeded + failed), 4) if succeeded + failed else None
