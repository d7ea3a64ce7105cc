"""The Starlette app factory: `uvicorn --factory app.web.app:create_app`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from app.config import Settings, load_settings
from app.kernel.handlers import INFRA_ERRORS
from app.kernel.heartbeat import HeartbeatPublisher, worker_id
from app.logs import configure_logging
from app.observability.history_sampler import HistorySampler
from app.observability.telemetry import configure_telemetry
from app.seed import seed
from app.services import build_services
from app.web import api, console, pages, sockets, traces, viewer
from app.web.broadcaster import PushLimits
from app.web.errors import exception_handlers, on_crash
from app.web.hub import Hub
from app.web.live_views import live_views, notice_streams
from app.web.metrics import HttpMetricsMiddleware, WebMetrics
from app.web.middleware import CatchAll, SecurityHeaders
from app.web.render import STATIC, Renderer, templates
from app.web.tracing import TracingMiddleware

log = logging.getLogger(__name__)


class StorefrontApp(Starlette):
    """Starlette, with the security headers outside everything (Starlette's own 500 too)."""

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeaders(super().build_middleware_stack())


async def _keep_alive(heartbeat: HeartbeatPublisher, app: Starlette) -> None:
    """Heartbeat (with the socket count) and, in development, the seed once Redis answers.

    `app.state.seeded` says the seed is in place (/readyz waits for it).
    """
    services = app.state.services
    while True:
        try:
            if services.server is None:
                await services.inspect_server()
            if not app.state.seeded:
                await seed(app.state.services)
                app.state.seeded = True
            await heartbeat.beat()
        except INFRA_ERRORS as exc:
            log.warning("redis not reachable yet: %s", exc)
        except Exception:  # e.g. an ACL that lacks a command: say so, and keep trying
            log.exception("heartbeat or development seed failed")
        await asyncio.sleep(2.0)


async def favicon(_request: Request) -> Response:
    """`/favicon.ico`, which browsers ask for by that name: the SVG the pages link to."""
    return FileResponse(
        STATIC / "favicon.svg",
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400"},
    )


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or load_settings()
    configure_logging(settings.log_level, "web", settings.log_format)
    metrics = WebMetrics()
    made_templates = templates(development=not settings.production)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services = build_services(
            settings, observer=metrics.observe_command, metrics=metrics.pipeline
        )
        viewer.install(made_templates.env, services.intake.registry)
        telemetry = configure_telemetry(settings, "web", services.read)
        hub = Hub(
            live_views(services, made_templates.env),
            notice_streams(services),
            PushLimits(
                stall_seconds=settings.ws_stall_seconds,
                max_pending=settings.ws_max_pending,
                max_per_client=settings.ws_max_per_client,
            ),
            metrics,
        )
        app.state.services = services
        app.state.hub = hub
        app.state.telemetry = telemetry
        heartbeat = HeartbeatPublisher(services.write, "web", worker_id("web"))
        heartbeat.info = lambda: {
            "ws": hub.connections,
            "wait_replicas": services.replication.replicas,
        }
        heartbeat.warnings = lambda: services.warnings
        app.state.seeded = settings.production  # production has no seed
        with contextlib.suppress(*INFRA_ERRORS):
            await services.inspect_server()  # production refuses a Redis without AOF here
        await hub.start()
        stop = asyncio.Event()
        sampler = HistorySampler(
            services.write,
            services.read,
            settings.partitions,
            heartbeat.id,
            lambda: hub.connections,
        )
        background = [
            asyncio.create_task(telemetry.run(stop)),
            asyncio.create_task(sampler.run(stop)),
        ]
        keeper = asyncio.create_task(_keep_alive(heartbeat, app))
        revocations = asyncio.create_task(services.sessions.follow_revocations())
        try:
            yield
        finally:
            keeper.cancel()
            revocations.cancel()
            await hub.stop()
            stop.set()
            await asyncio.gather(*background, return_exceptions=True)
            telemetry.shutdown()
            with contextlib.suppress(Exception):
                await heartbeat.remove()
            await services.close()

    app = StorefrontApp(
        routes=[
            *api.routes,
            *pages.routes,
            *console.routes,
            *traces.routes,
            *sockets.routes,
            Route("/favicon.ico", favicon),
            Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
        ],
        middleware=[
            Middleware(TracingMiddleware),
            Middleware(CatchAll, on_crash=on_crash),
            Middleware(HttpMetricsMiddleware, metrics=metrics),
        ],
        exception_handlers=exception_handlers(),  # type: ignore[arg-type]
        lifespan=lifespan,
    )
    app.state.templates = made_templates
    app.state.renderer = Renderer(made_templates.env)
    app.state.metrics = metrics
    return app
