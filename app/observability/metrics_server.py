"""A worker's /metrics: its own small HTTP server on METRICS_PORT, in the worker's event loop.

Why a port per process rather than prometheus_client's multiprocess mode: workers run as
many copies as wanted on any number of machines (each in its own container, usually), and
multiprocess mode only adds up processes that share one directory on one machine; a port per
process is what Prometheus discovers and labels by `instance` anyway. It listens on loopback
unless METRICS_HOST says otherwise, and asks for `Authorization: Bearer <METRICS_TOKEN>` when
that is set — the same rule as the web process's /metrics.
"""

from __future__ import annotations

import hmac
import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)


def authorized(header: str, token: str) -> bool:
    """No token configured, or `Bearer <token>`."""
    if not token:
        return True
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


class MetricsServer:
    def __init__(self, registry: CollectorRegistry, host: str, port: int, token: str = "") -> None:
        self._registry = registry
        self._host = host
        self.port = port
        self._token = token
        self._runner: web.AppRunner | None = None

    async def _metrics(self, request: web.Request) -> web.Response:
        if not authorized(request.headers.get("Authorization", ""), self._token):
            return web.Response(status=401, headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        return web.Response(
            body=generate_latest(self._registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def start(self) -> bool:
        """Listen; False (logged) when the port is taken: the worker runs on without it."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self.port).start()
        except OSError as exc:
            log.error("metrics: cannot listen on %s:%d (%s)", self._host, self.port, exc)
            await runner.cleanup()
            return False
        self._runner = runner
        log.info("metrics on http://%s:%d/metrics", self._host, self.port)
        return True

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
