"""The operator console's actions on the status page: dead letters, rebuilds, pauses.

Each button posts a form here; it becomes one of the kernel's admin commands and goes
through the intake like any command (authorized, idempotent by the form's key, journaled).
The answer is the command's status fragment, which the page's socket keeps up to date until
the command has its outcome. Without JavaScript the browser is sent to the command's page.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from app.kernel.errors import NotFound, ProblemError
from app.kernel.partitions import partition_of_command
from app.web.auth import require_admin, services_of
from app.web.bodies import read_form

ACTIONS: dict[str, tuple[str, ...]] = {
    "RetryDeadLetter": ("consumer", "letter_id"),
    "DiscardDeadLetter": ("consumer", "letter_id", "reason"),
    "RetryAllDeadLetters": ("consumer",),
    "RetryDeadLetters": ("consumer", "entry_type", "error"),
    "DiscardDeadLetters": ("consumer", "reason", "entry_type", "error"),
    "RebuildProjection": ("projection",),
    "SwapRebuild": ("projection",),
    "AbandonRebuild": ("projection",),
    "PauseConsumer": ("consumer", "reason"),
    "ResumeConsumer": ("consumer",),
}
"""The commands the console sends, and the form fields each takes."""


async def operator_action(request: Request) -> Response:
    command_type = request.path_params["command_type"]
    fields = ACTIONS.get(command_type)
    if fields is None:
        raise NotFound("No such action")
    actor = await require_admin(request)
    form = await read_form(request)
    document: dict[str, Any] = {"type": command_type}
    for name in fields:
        value = form.get(name, "")
        document[name] = value.strip() if isinstance(value, str) else ""
    key = form.get("idempotency_key", "")
    services = services_of(request)
    render = request.app.state.renderer
    try:
        command = services.intake.convert(document)
        reply = await services.intake.submit(
            command, actor, idempotency_key=key if isinstance(key, str) and key else None
        )
        failure = reply.error
    except ProblemError as exc:
        failure = exc.to_problem()
    if failure is not None:
        return HTMLResponse(render.fragment("operator_problem", problem=failure), failure.status)
    if "hx-request" not in request.headers:
        return RedirectResponse(f"/commands/{reply.command_id}", status_code=303)
    partition = partition_of_command(reply.command_id, services.settings.partitions)
    assert partition is not None
    stored = await services.statuses.get(partition, reply.command_id)
    if stored is None:  # accepted a moment ago: its status cannot be gone yet
        raise NotFound("No such command")
    return HTMLResponse(render.command_status(stored.view), reply.status_code)


routes: list[BaseRoute] = [
    Route("/ui/operator/{command_type}", operator_action, methods=["POST"]),
]
