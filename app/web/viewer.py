"""Whom a page is rendered for, and which of its controls that viewer is shown.

A page shows a control only if its viewer's roles may send the command behind it, as the
registry's command specs declare (`CommandSpec.roles`: the check the intake makes before
anything runs). Templates ask `may("ShipOrder")`. Ownership is not a role: a page lists
only what its viewer may see (a customer's orders are their own), so an order's Cancel
follows from the role too.

What a page shows depends on the viewer's roles, never on their name, so a pushed fragment
is rendered once per `Viewer` and serves everyone with the same roles. Nothing here loads
the web server or Jinja at import (the read models' declarations import it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from app.kernel.messages import Actor
from app.kernel.registry import Registry

if TYPE_CHECKING:
    from jinja2 import Environment

NAMELESS = ""
"""The name a viewer sends under when asked what it may send: only its roles count."""


class Viewer(msgspec.Struct, frozen=True):
    signed_in: bool = False
    roles: frozenset[str] = frozenset()

    @classmethod
    def of(cls, actor: Actor) -> Viewer:
        return cls(actor.authenticated, actor.roles)

    @property
    def sender(self) -> Actor:
        return Actor(NAMELESS if self.signed_in else None, self.roles)


NOBODY = Viewer()
"""Who a JSON push is rendered for: its messages are the same for everyone."""


def install(env: Environment, registry: Registry) -> None:
    """`may(command_type)` for templates: whether the context's `viewer` may send it. A
    template rendered without a viewer, or naming a command nobody registered, fails."""
    from jinja2 import pass_context

    @pass_context
    def may(context: Any, command_type: str) -> bool:
        viewer = context.get("viewer")
        if not isinstance(viewer, Viewer):
            raise TypeError(f"may({command_type!r}) in a template rendered without a viewer")
        return registry.may_send(viewer.sender, command_type)

    env.globals["may"] = may
