"""Every projection the registry runs has its unit tests, and announces what it writes.

Derived from the read models' declarations (app/read_models/, through the registry): a
projection declared there without a test module here fails the first test; an event type
added to the domain without an example in tests/support/storefront_events.py fails the
second; and the last runs every projection over an example of every message its stream
carries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import pytest

from app.config import load_settings
from app.domain.events import DomainEvent
from app.domain.order_integration import IntegrationEvents
from app.kernel import unions
from app.kernel.projection import Projection
from app.projections import registry
from app.read_models import DECLARED
from tests.support import storefront_events as examples
from tests.support.projection_harness import project_events

PROJECTIONS = registry.build(registry.ALL, load_settings({}))
DECLARED_BY = {feed.name: model for model in DECLARED for feed in model.projections}
"""Each projection's read model."""


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
def test_every_projection_announces_each_write_to_its_read_models_view(
    projection: Projection[Any],
) -> None:
    """Over each message its stream carries: it writes and announces its own read model's
    view, or does neither — unless that view is pushed every few seconds whatever changed
    (the command log, on the status page), when it announces nothing at all."""
    model = DECLARED_BY[projection.name]
    applied = 0
    for example in examples.on_stream(projection.stream(0)):
        run = project_events(projection, [example])
        applied += run.applied
        if model.every and model.refresh:
            assert run.changes == [], (type(example).__name__, run)
        else:
            assert bool(run.writes) == bool(run.changes), (type(example).__name__, run)
            assert {view for view, _key in run.changes} <= {model.view}, (example, run)
    assert applied, f"{projection.name} applied none of the messages of its stream"
