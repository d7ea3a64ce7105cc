"""The storefront's outcome kinds: the kernel's, with the order reasons that are failures."""

from __future__ import annotations

from app.domain.orders import FAILURE_REASONS
from app.kernel.outcomes import OutcomeKinds

OUTCOMES = OutcomeKinds().with_failures(FAILURE_REASONS)
