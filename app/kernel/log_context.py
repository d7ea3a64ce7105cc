"""Which command the code running now works for, for log lines (app/logs.py writes it out)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

current_command: ContextVar[str] = ContextVar("current_command", default="")


@contextlib.contextmanager
def working_for(command_id: str) -> Iterator[None]:
    token = current_command.set(command_id)
    try:
        yield
    finally:
        current_command.reset(token)
