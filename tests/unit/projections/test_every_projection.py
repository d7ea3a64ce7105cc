"""Every projection the registry runs has its unit tests, and announces what it writes.

Derived from app/projections/registry.py: a projection added there without a test module
here fails the first test; an event type added to the domain without an example in
tests/support/storefront_events.py fails the second; and the last runs every projection over
an example of every message its stream carries.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, get_args

import pytest
from jinja2 import Environment

from app.config import load_settings
from app.domain.events import DomainEvent
from app.domain.orders import IntegrationEvents
from app.kernel import unions
from app.kernel.projection import Projection
from app.projections import registry
from app.web.live_views import live_views
from app.web.render import Renderer
from tests.support import storefront_events as examples
from tests.support.projection_harness import project_events

PROJECTIONS = registry.build(registry.ALL, load_settings({}))


def followed_views() -> set[str]:
    """The views the WebSocket hubs push: a change naming another view reaches nobody."""
    services: Any = SimpleNamespace(
        read=None, write=None, statuses=None, settings=load_settings({})
    )
    return {view.name for view in live_views(services, Renderer(Environment()))}


@pytest.mark.parametrize("name", registry.ALL)
def test_every_projection_has_a_unit_test_module_named_after_it(name: str) -> None:
    module = Path(__file__).with_name(f"test_{name}.py")
    assert module.is_file(), f"projection {name!r} has no unit tests: write {module}"


def test_the_examples_cover_every_event_type() -> None:
    domain = examples.PRODUCT_EVENTS + examples.ORDER_EVENTS
    assert sorted(type(e).__name__ for e in domain) == sorted(
        t.__name__ for t in unions.members(DomainEvent)
    )
    integration = sorted(type(e).__name__ for e in examples.INTEGRATION_EVENTS)
    assert integration == sorted(t.__name__ for t in get_args(IntegrationEvents))


@pytest.mark.parametrize("projection", PROJECTIONS, ids=[p.name for p in PROJECTIONS])
def test_every_projection_announces_each_write_to_a_view_the_hubs_follow(
    projection: Projection[Any],
) -> None:
    """Over each message its stream carries: it writes and announces, or does neither."""
    views = followed_views()
    applied = 0
    for example in examples.on_stream(projection.stream(0)):
        run = project_events(projection, [example])
        applied += run.applied
        assert bool(run.writes) == bool(run.changes), (type(example).__name__, run)
        assert {view for view, _key in run.changes} <= views, (type(example).__name__, run)
    assert applied, f"{projection.name} applied none of the messages of its stream"
