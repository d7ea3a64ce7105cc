"""The JSON API of API.md: sessions, commands, queries, operations.

Over 300 lines: one module is the whole contract, endpoint by endpoint, with its route table
at the end, so it can be read against API.md in one place."""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import Sequence

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.adapters.request_budget import RequestBudget
from app.adapters.sessions import COOKIE
from app.kernel.command_status import CommandStatus
from app.kernel.errors import NotFound, ProblemError, Unauthenticated, ValidationFailed, problem
from app.kernel.heartbeat import live_heartbeats
from app.kernel.intake import Reply
from app.kernel.messages import Actor, FieldError
from app.kernel.pauses import paused
from app.kernel.validation import (
    decode_document,
)
from app.queries import catalog, notifications, orders, sales
from app.queries.admin_status import admin_status
from app.queries.positions import BadPosition, ReadPosition, wait_for
from app.read_models.commands import visible_status
from app.web.auth import (
    actor_for,
    actor_of,
    refuse_other_sites,
    require_admin,
    require_user,
    services_of,
    session_of,
)
from app.web.bodies import read_body
from app.web.params import bounded_int
from app.web.responses import json_response, problem_response
from app.web.signin import client_address, set_session_cookie, sign_in
from app.web.watched import watched_consumers

SKU = re.compile(r"[A-Z0-9-]{3,32}")
WORKER_KINDS = ("commands", "projector", "process", "notifier", "archiver")
MAX_CREDENTIALS = 8192


class UnsupportedMediaType(ProblemError):
    status = 415

    def __init__(self) -> None:
        super().__init__("unsupported_media_type", "Send Content-Type: application/json")


class Credentials(msgspec.Struct, frozen=True):
    username: str
    password: str


_credentials = msgspec.json.Decoder(Credentials)


def require_json(request: Request) -> None:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json" and not (
        media.startswith("application/") and media.endswith("+json")
    ):
        raise UnsupportedMediaType()


def reply_response(reply: Reply) -> Response:
    if reply.error is not None:
        return problem_response(reply.error)
    body: dict[str, str | None] = {"command_id": reply.command_id, "status": reply.status}
    headers = {}
    if reply.status_code == 200:
        body["position"] = reply.position
    if reply.location:
        headers["Location"] = reply.location
    return json_response(body, reply.status_code, headers)


async def spend_command_budget(request: Request) -> None:
    """COMMAND_RATE_PER_MINUTE per client: the signed-in user, else the client's address."""
    services = services_of(request)
    per_minute = services.settings.command_budget
    if not per_minute:
        return
    session = await session_of(request)
    client = f"user:{session.username}" if session else f"address:{client_address(request)}"
    await RequestBudget(services.write, "commands", per_minute).spend(client, time.time())


async def post_command(request: Request) -> Response:
    require_json(request)
    await spend_command_budget(request)
    raw = await read_body(request)
    services = services_of(request)
    command = services.intake.decode(raw)
    actor = await actor_for(request)
    prefer = request.headers.get("prefer", "").lower()
    reply = await services.intake.submit(
        command,
        actor,
        idempotency_key=request.headers.get("idempotency-key"),
        prefer_async="respond-async" in prefer,
    )
    return reply_response(reply)


async def visible_command(request: Request) -> CommandStatus:
    """The status of the path's command, for its sender and admins; 404 for anyone else."""
    actor = actor_of(await session_of(request))
    return await visible_status(services_of(request), actor, request.path_params["command_id"])


async def get_command(request: Request) -> Response:
    return json_response(await visible_command(request))


# --- sessions --------------------------------------------------------------------------------


def decode_credentials(raw: bytes) -> Credentials:
    return decode_document(_credentials, raw)


async def login(request: Request) -> Response:
    refuse_other_sites(request)
    require_json(request)
    credentials = decode_credentials(await read_body(request, MAX_CREDENTIALS))
    user = await sign_in(request, credentials.username, credentials.password)
    if user is None:
        return problem_response(problem("invalid_credentials", 401, "Wrong username or password"))
    token, session = await services_of(request).sessions.create(user.username, user.roles)
    response = json_response(
        {"username": user.username, "roles": sorted(user.roles), "csrf_token": session.csrf_token}
    )
    set_session_cookie(request, response, token, user.username)
    return response


async def logout(request: Request) -> Response:
    await actor_for(request)  # CSRF
    await services_of(request).sessions.delete(request.cookies.get(COOKIE))
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/")
    return response


# --- queries ---------------------------------------------------------------------------------


async def consistent(request: Request, projections: Sequence[str]) -> ReadPosition:
    services = services_of(request)
    try:
        return await wait_for(
            services.read,
            projections,
            services.settings.partitions,
            request.query_params.get("min_position"),
            services.settings.consistency_wait_seconds,
        )
    except BadPosition:
        raise ValidationFailed(
            [FieldError("min_position", "Not a position this service issued")]
        ) from None


def read_headers(position: ReadPosition) -> dict[str, str]:
    headers = {"X-Read-Position": position.token}
    if position.stale:
        headers["X-Consistency"] = "stale"
    return headers


def not_found(detail: str, position: ReadPosition) -> Response:
    """A query's 404 still says how far its read model had got (it may not be there yet)."""
    return problem_response(NotFound(detail).to_problem(), headers=read_headers(position))


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    value = bounded_int(raw, low, high)
    if value is None:
        raise ValidationFailed([FieldError(name, f"An integer from {low} to {high}")])
    return value


async def list_products(request: Request) -> Response:
    after = request.query_params.get("after", "")
    if after and not SKU.fullmatch(after):
        raise ValidationFailed([FieldError("after", "A sku")])
    limit = int_param(request, "limit", 500, 1, catalog.MAX_PAGE)
    position = await consistent(request, catalog.PROJECTIONS)
    products, next_after = await catalog.list_products(
        services_of(request).read_side, after=after, limit=limit
    )
    headers = read_headers(position)
    if next_after:
        headers["Link"] = f'</api/products?after={next_after}&limit={limit}>; rel="next"'
    return json_response(products, headers=headers)


async def get_product(request: Request) -> Response:
    position = await consistent(request, catalog.PROJECTIONS)
    product = await catalog.get_product(services_of(request).read_side, request.path_params["sku"])
    if product is None:
        return not_found("No such product", position)
    return json_response(product, headers=read_headers(position))


async def visible_order(request: Request, actor: Actor, order_id: str) -> orders.OrderView | None:
    """The order if this session may see it: admins any, customers only their own."""
    return await orders.visible_order(services_of(request).read_side, actor, order_id)


async def list_orders(request: Request) -> Response:
    actor = await require_user(request)
    position = await consistent(request, orders.PROJECTIONS)
    limit = int_param(request, "limit", 50, 1, 500)
    customer = None if actor.has_role("admin") else actor.username
    found = await orders.list_orders(services_of(request).read_side, customer, limit=limit)
    return json_response(found, headers=read_headers(position))


async def get_order(request: Request) -> Response:
    actor = await require_user(request)
    position = await consistent(request, orders.PROJECTIONS)
    order = await visible_order(request, actor, request.path_params["order_id"])
    if order is None:
        return not_found("No such order", position)
    return json_response(order, headers=read_headers(position))


async def get_admin_status(request: Request) -> Response:
    await require_admin(request)
    position = await consistent(request, ("command_log",))
    services = services_of(request)
    status = await admin_status(
        services.write, services.read, watched_consumers(), services.settings.partitions
    )
    return json_response(status, headers=read_headers(position))


async def get_sales(request: Request) -> Response:
    await require_admin(request)
    position = await consistent(request, sales.PROJECTIONS)
    read = services_of(request).read_side
    dashboard = await sales.sales_dashboard(read)
    return json_response(
        {"sales": dashboard, "low_stock": await sales.low_stock(read)},
        headers=read_headers(position),
    )


async def get_notifications(request: Request) -> Response:
    actor = await require_user(request)
    assert actor.username is not None
    position = await consistent(request, notifications.PROJECTIONS)
    inbox = await notifications.inbox(services_of(request).read_side, actor.username)
    return json_response(inbox, headers=read_headers(position))


async def read_notifications(request: Request) -> Response:
    actor = await require_user(request)
    assert actor.username is not None
    await notifications.mark_read(services_of(request).read_side, actor.username)
    return Response(status_code=204)


# --- operations --------------------------------------------------------------------------


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready: Redis answers, every worker kind heartbeats, and the development seed (if any)
    is in place, so the seeded users can sign in. Consumers an operator paused are listed
    (`paused`: group → who and why) without making it unready: a pause is deliberate."""
    services = services_of(request)
    checks: dict[str, str] = {}
    paused_groups: dict[str, str] = {}
    if not services.settings.production:
        checks["seed"] = "ok" if request.app.state.seeded else "not yet"
    try:
        await services.write.ping()
        if services.read is not services.write:
            await services.read.ping()
        checks["redis"] = "ok"
        beats = await live_heartbeats(services.write, prune=False)
        kinds = {b.kind for b in beats}
        for kind in WORKER_KINDS:
            checks[kind] = "ok" if kind in kinds else "no heartbeat"
        for beat in beats:
            for stall in beat.stalls:  # a consumer that cannot move forward is not ready
                checks[beat.kind] = (
                    f"stalled: {stall.group} partition {stall.partition}, no progress for "
                    f"{stall.seconds:.0f} s" + (f" ({stall.error})" if stall.error else "")
                )
        for pause in (await paused(services.write)).values():  # deliberate: still ready
            paused_groups[pause.group] = f"paused by {pause.by}" + (
                f": {pause.reason}" if pause.reason else ""
            )
    except OSError as exc:
        checks["redis"] = f"unreachable: {type(exc).__name__}"
    except Exception as exc:  # redis errors are not all OSErrors
        checks["redis"] = f"unreachable: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return json_response(
        {"status": "ready" if ready else "not_ready", "checks": checks, "paused": paused_groups},
        200 if ready else 503,
    )


def check_metrics_token(request: Request) -> None:
    """METRICS_TOKEN set: `Authorization: Bearer <token>`. Unset: open in development, absent
    (404) in production."""
    token = services_of(request).settings.metrics_token
    if not token:
        if services_of(request).settings.production:
            raise NotFound("No such page")
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        refused = Unauthenticated("Send Authorization: Bearer <METRICS_TOKEN>")
        refused.headers = {"WWW-Authenticate": 'Bearer realm="metrics"'}
        raise refused


async def metrics(request: Request) -> Response:
    check_metrics_token(request)
    services = services_of(request)
    try:
        status = await admin_status(
            services.write, services.read, watched_consumers(), services.settings.partitions
        )
    except Exception:  # the process metrics are still worth serving without Redis
        status = None
    body = request.app.state.metrics.render(status)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


routes: list[BaseRoute] = [
    Route("/api/session", login, methods=["POST"]),
    Route("/api/session", logout, methods=["DELETE"]),
    Route("/api/commands", post_command, methods=["POST"]),
    Route("/api/commands/{command_id}", get_command, methods=["GET"]),
    Route("/api/products", list_products, methods=["GET"]),
    Route("/api/products/{sku}", get_product, methods=["GET"]),
    Route("/api/orders", list_orders, methods=["GET"]),
    Route("/api/orders/{order_id}", get_order, methods=["GET"]),
    Route("/api/admin/status", get_admin_status, methods=["GET"]),
    Route("/api/admin/sales", get_sales, methods=["GET"]),
    Route("/api/notifications", get_notifications, methods=["GET"]),
    Route("/api/notifications/read", read_notifications, methods=["POST"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
