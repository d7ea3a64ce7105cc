"""One command's status page, with its trace's waterfall (its status's live region is
declared in app/read_models/commands.py)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.queries.waterfall import command_waterfall
from app.web.api import visible_command
from app.web.auth import services_of
from app.web.layout import page


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


routes: list[BaseRoute] = [
    Route("/commands/{command_id}", command_page),
]
