"""POST /ui/commands/<type>: an admin form, or an order's one-button action, through the
intake like any command.

The forms come from the registry (app/web/form_specs.py): one for every public command an
admin may send, except those another page offers (an order's buttons here, the status
page's console in app/web/console.py).
"""

from __future__ import annotations

import functools

import msgspec
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.kernel.errors import Forbidden, NotFound, ProblemError, Unauthenticated, ValidationFailed
from app.kernel.messages import Actor
from app.kernel.partitions import partition_of_command
from app.kernel.registry import Registry
from app.web import console
from app.web.auth import actor_for, services_of
from app.web.bodies import MAX_FORM, read_form
from app.web.form_specs import FormSpec, admin_forms
from app.web.forms import (
    MAX_IMPORT_BYTES,
    FormState,
    document_from_form,
    summary,
    with_errors,
    with_problem,
)
from app.web.pages.common import form_text, html, renderer

ORDER_ACTIONS = {"CancelOrder": "Cancelled", "ShipOrder": "Shipped"}
"""An order's buttons (its row, its page): each one's command, and what its flash says."""
MAX_ROWS_FORM = MAX_IMPORT_BYTES + MAX_FORM


@functools.lru_cache(maxsize=8)
def forms_for(registry: Registry) -> dict[str, FormSpec]:
    """The admin's forms, by command type (built once per registry)."""
    return admin_forms(registry, {*ORDER_ACTIONS, *console.ACTIONS})


def command_forms(request: Request) -> dict[str, FormSpec]:
    return forms_for(services_of(request).intake.registry)


async def may_send(request: Request, command_type: str) -> Actor:
    """Who sends a form's command, checked before its body (an upload, maybe) is read."""
    actor = await actor_for(request)
    registry = services_of(request).intake.registry
    if command_type not in command_forms(request) and command_type not in ORDER_ACTIONS:
        raise NotFound("No such form")
    if not actor.authenticated:
        raise Unauthenticated()
    spec = registry.spec(command_type)
    if not spec.permits(actor):
        raise Forbidden(f"{command_type} needs the role {' or '.join(sorted(spec.roles))}")
    return actor


async def command_form(request: Request) -> Response:
    """An admin form, or a one-button action (Cancel, Ship), through the intake."""
    command_type = request.path_params["command_type"]
    actor = await may_send(request, command_type)
    spec = command_forms(request).get(command_type)
    if spec is None:
        return await action(request, actor, command_type, await read_form(request))
    rows = spec.rows is not None
    form = await read_form(request, MAX_ROWS_FORM if rows else MAX_FORM, max_files=1 if rows else 0)
    try:
        return await submit_form(request, actor, spec, form)
    finally:
        await form.close()  # an upload's spooled file


async def submit_form(request: Request, actor: Actor, spec: FormSpec, form: FormData) -> Response:
    """The form's command through the intake; the form again, with errors or the status."""
    services = services_of(request)
    state = FormState(spec)
    render = renderer(request)
    try:
        document, state.values = await document_from_form(spec, form)
        command = services.intake.convert(document)
        reply = await services.intake.submit(
            command, actor, idempotency_key=form_text(form, "idempotency_key") or None
        )
    except ValidationFailed as exc:
        with_errors(state, exc.errors or [])
        state.problem = exc.to_problem()
        return html(render.fragment("command_form", f=state), 422)
    except ProblemError as exc:
        with_problem(state, exc.to_problem())
        return html(render.fragment("command_form", f=state), exc.status)
    if reply.error is not None:
        with_problem(state, reply.error)
        return html(render.fragment("command_form", f=state), reply.error.status)
    partition = partition_of_command(reply.command_id, services.settings.partitions)
    assert partition is not None
    stored = await services.statuses.get(partition, reply.command_id)
    fresh = FormState(spec, status=stored.view if stored else None, done=summary(spec, document))
    return html(render.fragment("command_form", f=fresh), reply.status_code)


async def action(request: Request, actor: Actor, command_type: str, form: FormData) -> Response:
    """An order's button: its command's fields from the form (an optional one left out when
    empty); the answer is a flash message."""
    services = services_of(request)
    command = services.intake.registry.spec(command_type).command_type
    document = {"type": command_type}
    for field in msgspec.structs.fields(command):
        value = form_text(form, field.encode_name)
        if value or field.required:
            document[field.encode_name] = value
    try:
        reply = await services.intake.submit(
            services.intake.convert(document),
            actor,
            idempotency_key=form_text(form, "idempotency_key") or None,
        )
        failure = reply.error
    except ProblemError as exc:
        failure = exc.to_problem()
    render = renderer(request)
    if failure is not None:
        return html(render.fragment("flash", problem=failure), failure.status)
    label = ORDER_ACTIONS[command_type]
    return html(render.fragment("flash", message=f"{label} {document['order_id'][-8:]}"))


routes: list[BaseRoute] = [
    Route("/ui/commands/{command_type}", command_form, methods=["POST"]),
]
