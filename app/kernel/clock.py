"""Time as the kernel records it: epoch seconds, shown as ISO 8601 UTC."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now() -> float:
    return round(time.time(), 3)


def iso(epoch: float | str | None) -> str | None:
    if epoch is None or epoch == "":
        return None
    moment = datetime.fromtimestamp(float(epoch), tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
