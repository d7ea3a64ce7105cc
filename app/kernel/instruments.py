"""What the kernel measures as it works, for whoever keeps metrics (the app's Prometheus)."""

from __future__ import annotations

from typing import Protocol


class Instruments(Protocol):
    def stage(self, command_type: str, stage: str, seconds: float) -> None:
        """A command spent `seconds` in a stage: queued, decide, commit."""

    def applied(self, consumer: str, count: int) -> None:
        """A consumer applied `count` entries (committed, not skipped)."""


class _Nothing:
    def stage(self, command_type: str, stage: str, seconds: float) -> None:
        return None

    def applied(self, consumer: str, count: int) -> None:
        return None


NO_INSTRUMENTS: Instruments = _Nothing()
