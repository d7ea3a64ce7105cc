"""Which controls a page shows each viewer: derived from the command specs' roles."""

from __future__ import annotations

import pytest
from jinja2 import Environment

from app.kernel.messages import ANONYMOUS, Actor
from app.web.render import templates
from app.web.viewer import NOBODY, Viewer, install
from tests.unit.test_registry import INTERNAL, PUBLIC, REGISTRY

ADMIN = Viewer.of(Actor("admin", frozenset({"admin"})))
SHOPPER = Viewer.of(Actor("alice", frozenset({"customer"})))


def env() -> Environment:
    made = templates().env
    install(made, REGISTRY)
    return made


def shown(viewer: Viewer | None, command: str) -> str:
    context = {} if viewer is None else {"viewer": viewer}
    return env().from_string("{{ may(command) }}").render(command=command, **context)


@pytest.mark.parametrize(
    ("command", "admin", "shopper"),
    [
        ("ShipOrder", True, False),
        ("CreateProduct", True, False),
        ("PlaceOrder", False, True),
        ("CancelOrder", True, True),
        ("RetryDeadLetter", True, False),
    ],
)
def test_a_control_shows_to_the_roles_its_command_allows(
    command: str, admin: bool, shopper: bool
) -> None:
    assert shown(ADMIN, command) == str(admin)
    assert shown(SHOPPER, command) == str(shopper)
    assert shown(NOBODY, command) == "False"


def test_nobody_is_offered_an_internal_command_and_anonymous_nothing() -> None:
    assert INTERNAL and PUBLIC
    everyone = Viewer(True, frozenset({"admin", "customer", "system"}))
    assert not any(REGISTRY.may_send(everyone.sender, name) for name in INTERNAL)
    assert not any(REGISTRY.may_send(ANONYMOUS, name) for name in PUBLIC)
    assert all(REGISTRY.may_send(everyone.sender, name) for name in PUBLIC)


def test_the_same_roles_are_the_same_viewer_whoever_they_are() -> None:
    assert Viewer.of(Actor("bob", frozenset({"customer"}))) == SHOPPER
    assert hash(Viewer.of(Actor("bob", frozenset({"customer"})))) == hash(SHOPPER)
    assert Viewer.of(ANONYMOUS) == NOBODY


def test_a_template_without_a_viewer_or_naming_an_unknown_command_fails() -> None:
    with pytest.raises(TypeError, match="without a viewer"):
        shown(None, "ShipOrder")
    with pytest.raises(KeyError):
        shown(ADMIN, "ShipOrders")
