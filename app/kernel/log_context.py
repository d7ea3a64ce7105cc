"""Which command the code running now works for, for log lines (app/logs.py writes it out)."""

from __future__ import annotations

from contextvars import ContextVar, Token
from types import TracebackType

current_command: ContextVar[str] = ContextVar("current_command", default="")


class working_for:
    """While the block runs, log lines name this command (a class: cheaper than a generator
    context manager, on every accepted command's path)."""

    __slots__ = ("_command_id", "_token")

    def __init__(self, command_id: str) -> None:
        self._command_id = command_id
        self._token: Token[str] | None = None

    def __enter__(self) -> None:
        self._token = current_command.set(self._command_id)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._token is not None:
            current_command.reset(self._token)
