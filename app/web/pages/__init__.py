"""HTML pages and the htmx endpoints behind their forms, one module per area.

Every page reads without JavaScript; with it, forms post through htmx and live regions
follow the WebSocket. Forms go through the same intake as the JSON API. The live regions'
fragment routes, and the simple admin pages read models declare, come from the
declarations (app/web/live_routes.py).
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from app.web import live_routes
from app.web.pages import (
    actions,
    admin,
    catalog,
    checkout,
    commands,
    notifications,
    orders,
    session,
)

routes: list[BaseRoute] = [
    *catalog.routes,
    *session.routes,
    *orders.routes,
    *checkout.routes,
    *commands.routes,
    *notifications.routes,
    *admin.routes,
    *actions.routes,
    *live_routes.routes,
]
