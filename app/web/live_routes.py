"""The routes and page markup that derive from the read models' declarations.

* Each declared `Region` is a fragment route (`/fragments/...`): it answers the items its
  loader finds, rendered without `oob`. A region of a read model only admins may watch
  answers 403 to anyone else, as the admin pages do.
* Pages mark a live region with the `live_region` macro (templates/live.html), which looks
  the region up by name: a page naming a region nobody declared fails to render, so it can
  never re-fetch a route that does not exist.
* A declaration's `Page` is a simple admin page — its title over its fragment, in a live
  region — linked from the admin's navigation (`admin_pages`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from jinja2 import Environment
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from app.kernel.errors import Forbidden
from app.read_models import DECLARED
from app.services import Services
from app.web.auth import actor_of, services_of, session_of
from app.web.layout import page
from app.web.live_models import Audience, LiveReadModel, Page, Region, RegionRequest
from app.web.viewer import Viewer

Declared = Iterable[LiveReadModel[Services, Any]]
ADMIN_ONLY = "This page is for admins"


def regions(declared: Declared) -> dict[str, tuple[LiveReadModel[Services, Any], Region[Any, Any]]]:
    """Every declared region by name, with its read model; a name declared twice is an error."""
    found: dict[str, tuple[LiveReadModel[Services, Any], Region[Any, Any]]] = {}
    for model in declared:
        for region in model.all_regions:
            if region.name in found:
                raise ValueError(f"region {region.name!r} is declared twice")
            found[region.name] = (model, region)
    return found


def region_named(name: str) -> Region[Any, Any]:
    """The declared region of this name, for the `live_region` macro; LookupError if none."""
    try:
        return REGIONS[name][1]
    except KeyError:
        declared = sorted(REGIONS)
        raise LookupError(f"no live region {name!r} is declared; declared: {declared}") from None


def install(env: Environment) -> None:
    """What templates need of the declarations: `region(name)` and the admin's pages."""
    env.globals["region"] = region_named
    env.globals["admin_pages"] = ADMIN_PAGES


def _admins_only(model: LiveReadModel[Services, Any], asked: RegionRequest[Services]) -> None:
    if model.watchers is Audience.ADMINS and not asked.actor.has_role("admin"):
        raise Forbidden(ADMIN_ONLY)


def _region_route(model: LiveReadModel[Services, Any], region: Region[Any, Any]) -> Route:
    shown = region.fragment or model.fragment

    async def answer(request: Request) -> Response:
        asked = RegionRequest(
            services_of(request),
            actor_of(await session_of(request)),
            request.query_params,
            request.path_params,
        )
        _admins_only(model, asked)
        env: Environment = request.app.state.templates.env
        items = await region.load(asked)
        viewer = Viewer.of(asked.actor)
        return HTMLResponse(
            "".join(shown.render(env, item, oob=False, viewer=viewer) for item in items)
        )

    return Route(region.path, answer)


def _page_route(model: LiveReadModel[Services, Any], made: Page) -> Route:
    async def answer(request: Request) -> Response:
        session = await session_of(request)
        if session is None or "admin" not in session.roles:
            raise Forbidden(ADMIN_ONLY)
        (item,) = await model.load(services_of(request), [made.key])
        env: Environment = request.app.state.templates.env
        viewer = Viewer.of(actor_of(session))
        shown = "" if item is None else model.fragment.render(env, item, oob=False, viewer=viewer)
        return await page(
            request,
            "pages/live.html",
            [model.topic_name, "commands"],
            title=made.title,
            region=made.path,
            shown=Markup(shown),  # the HTML our own template made
        )

    return Route(made.path, answer)


REGIONS = regions(DECLARED)
ADMIN_PAGES = [model.page for model in DECLARED if model.page is not None]
routes: list[BaseRoute] = [
    *(_region_route(model, region) for model, region in REGIONS.values()),
    *(_page_route(model, model.page) for model in DECLARED if model.page is not None),
]
