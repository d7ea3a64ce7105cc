"""One command's status page (with its trace's waterfall) and its live fragment."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.queries.waterfall import command_waterfall
from app.web.api import visible_command
from app.web.auth import services_of
from app.web.layout import page
from app.web.pages.common import html, renderer


async def command_page(request: Request) -> Response:
    command = await visible_command(request)
    services = services_of(request)
    return await page(
        request,
        "pages/command.html",
        ["commands", "notifications"],
        c=command,
        w=await command_waterfall(
            services.read, command.command_id, services.settings.trace_ui_url
        ),
    )


async def command_fragment(request: Request) -> Response:
    return html(renderer(request).command_status(await visible_command(request)))


routes: list[BaseRoute] = [
    Route("/commands/{command_id}", command_page),
    Route("/fragments/commands/{command_id}", command_fragment),
]
