"""Every failure becomes a problem object (API) or a friendly page (HTML) — never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from redis.exceptions import (
    ClusterDownError,
    ReadOnlyError,
    RedisClusterUnreachableError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from app.kernel.errors import ProblemError, problem
from app.kernel.messages import Problem
from app.kernel.replication import ReplicationTimeout
from app.web.layout import anonymous_context, layout_context
from app.web.responses import problem_response

log = logging.getLogger(__name__)
REDIS_DOWN = (
    RedisConnectionError,
    RedisTimeoutError,
    ConnectionRefusedError,
    ClusterDownError,
    TryAgainError,
    ReadOnlyError,
    SlotNotCoveredError,
    RedisClusterUnreachableError,
)
"""Redis cannot be reached, or a Cluster is failing over: 503 unavailable."""
REPLICATION_RETRY_AFTER_SECONDS = 1

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def wants_html(request: Request) -> bool:
    if request.url.path.startswith("/api/") or request.headers.get("hx-request"):
        return False
    return "text/html" in request.headers.get("accept", "")


async def render(
    request: Request, problem_obj: Problem, headers: Mapping[str, str] | None = None
) -> Response:
    if wants_html(request):
        try:
            context = await layout_context(request, ["catalog"])
        except Exception:  # the data store is down: still a friendly page
            context = anonymous_context(request)
        return error_page(request, problem_obj, context, headers)
    return problem_response(problem_obj, headers)


def error_page(
    request: Request,
    problem_obj: Problem,
    context: dict[str, Any],
    headers: Mapping[str, str] | None = None,
) -> Response:
    return request.app.state.templates.TemplateResponse(  # type: ignore[no-any-return]
        request,
        "pages/error.html",
        {**context, "problem": problem_obj},
        status_code=problem_obj.status,
        headers=headers,
    )


async def on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    headers = dict(exc.headers)
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers.setdefault("Retry-After", str(retry_after))
    return await render(request, exc.to_problem(), headers)


async def on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return await render(request, problem(code, exc.status_code, str(exc.detail or "")))


async def on_redis_down(request: Request, exc: Exception) -> Response:
    log.warning("redis unavailable during %s %s: %s", request.method, request.url.path, exc)
    return await render(
        request,
        problem("unavailable", 503, "The data store cannot be reached; nothing was accepted."),
    )


async def on_replication_timeout(request: Request, exc: Exception) -> Response:
    """Written, but its replicas did not confirm it in time (REDIS_WAIT_REPLICAS): the
    client sends it again under the same Idempotency-Key and gets the first outcome (or, if
    a failover lost it, it runs anew)."""
    log.warning("replicas late during %s %s: %s", request.method, request.url.path, exc)
    return await render(
        request,
        problem(
            "replication_timeout",
            503,
            "Not confirmed by the data store's replicas in time; send it again with the same "
            "Idempotency-Key.",
        ),
        {"Retry-After": str(REPLICATION_RETRY_AFTER_SECONDS)},
    )


async def on_crash(request: Request, exc: Exception) -> Response:
    """Any other exception (see middleware.CatchAll): logged, and a 500 without details."""
    if isinstance(exc, ReplicationTimeout):
        return await on_replication_timeout(request, exc)
    if isinstance(exc, REDIS_DOWN):
        return await on_redis_down(request, exc)
    log.error("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    body = problem("internal_error", 500, "The error was logged.")
    if wants_html(request):
        try:  # no session lookup: whatever broke may be behind it
            return error_page(request, body, anonymous_context(request))
        except Exception:
            return HTMLResponse("<h1>Something went wrong</h1><p>The error was logged.</p>", 500)
    return problem_response(body)


def exception_handlers() -> dict[type[Exception] | int, object]:
    """Handlers of the exceptions a request may end with; anything else goes to on_crash."""
    handlers: dict[type[Exception] | int, object] = {
        ProblemError: on_problem,
        HTTPException: on_http,
    }
    for kind in REDIS_DOWN:
        handlers[kind] = on_redis_down
    handlers[ReplicationTimeout] = on_replication_timeout
    return handlers
