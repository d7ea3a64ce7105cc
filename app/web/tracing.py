"""A SERVER span for each traced HTTP request, with the OTel HTTP attributes.

Traced: every request when this process starts traces (spans are exported), else only a
request that brings a sampled `traceparent` (the pages' form posts do, static/app.js). Any
other request passes straight through, for the price of looking for one header.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from app.kernel import tracing
from app.web.middleware import ResponseStatus

TRACEPARENT = b"traceparent"


def _traceparent(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == TRACEPARENT:
            return str(value.decode("latin-1"))
    return ""


class TracingMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not tracing.enabled():
            await self.app(scope, receive, send)
            return
        parent = _traceparent(scope)
        if not parent and not tracing.starts_traces():
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        span = tracing.incoming(
            method,
            parent,
            attributes={
                "http.request.method": method,
                "url.path": scope["path"],
                "url.scheme": scope.get("scheme", "http"),
            },
        )
        if span is None:
            await self.app(scope, receive, send)
            return
        status = ResponseStatus(send)
        try:
            with tracing.current_span(span):
                await self.app(scope, receive, status)
        finally:
            route = getattr(scope.get("route"), "path", None)
            if route:
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", status.code)
            tracing.end(span, f"HTTP {status.code}" if status.code >= 500 else "")
