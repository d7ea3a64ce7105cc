"""Errors that end a command, each mapping to one problem object of the public contract."""

from __future__ import annotations

from app.kernel.messages import FieldError, Problem

TITLES: dict[str, str] = {
    "malformed_json": "The body is not valid JSON",
    "unauthenticated": "Sign in first",
    "forbidden": "Not allowed",
    "csrf_failed": "Cross-site request refused",
    "not_found": "Not found",
    "payload_too_large": "The body is too large",
    "unsupported_media_type": "Send application/json",
    "validation_failed": "Some fields are not valid",
    "unknown_command": "No such command",
    "unavailable": "The service is unavailable; nothing was accepted",
    "concurrency_conflict": "Too many concurrent changes; try again",
    "idempotency_key_reused": "This Idempotency-Key was used with another request",
    "invalid_credentials": "Wrong username or password",
    "too_many_attempts": "Too many failed sign-ins; try again later",
    "too_many_requests": "Too many requests; slow down",
    "internal_error": "Something went wrong on our side",
    "overloaded": "Too busy right now; try again shortly",
}


def problem(
    code: str,
    status: int,
    detail: str = "",
    errors: list[FieldError] | None = None,
    title: str | None = None,
) -> Problem:
    return Problem(
        type=f"/problems/{code}",
        title=title or TITLES.get(code, code.replace("_", " ").capitalize()),
        status=status,
        code=code,
        detail=detail,
        errors=errors,
    )


class ProblemError(Exception):
    """Raised anywhere a request or command must end with a problem object."""

    status = 400

    def __init__(self, code: str, detail: str = "", errors: list[FieldError] | None = None):
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.errors = errors
        self.headers: dict[str, str] = {}
        """HTTP headers the answer carries (e.g. Retry-After)."""

    def to_problem(self) -> Problem:
        return problem(self.code, self.status, self.detail, self.errors)


class CommandRejected(ProblemError):
    """A business rule said no (409).

    `not_yet`: the aggregate is not there yet (an order not paid yet, say) rather than past
    it. Sent by a process as one of its steps, such a refusal is answered but not recorded in
    the step's dedup record, so the step asked again later is decided anew: after a failover
    took an aggregate's last writes back, its steps are taken again (kernel/decisions.py).
    """

    status = 409

    def __init__(
        self,
        code: str,
        detail: str = "",
        errors: list[FieldError] | None = None,
        *,
        not_yet: bool = False,
    ) -> None:
        super().__init__(code, detail, errors)
        self.not_yet = not_yet


class ValidationFailed(ProblemError):
    status = 422

    def __init__(self, errors: list[FieldError], code: str = "validation_failed"):
        detail = "; ".join(f"{e.path}: {e.message}" for e in errors)
        super().__init__(code, detail, errors)


class Unauthenticated(ProblemError):
    status = 401

    def __init__(self, detail: str = "This needs a signed-in user") -> None:
        super().__init__("unauthenticated", detail)


class Forbidden(ProblemError):
    status = 403

    def __init__(self, detail: str = "", code: str = "forbidden") -> None:
        super().__init__(code, detail)


class NotFound(ProblemError):
    status = 404

    def __init__(self, detail: str = "") -> None:
        super().__init__("not_found", detail)
