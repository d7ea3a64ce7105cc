"""The storefront's registry: which commands are public, who may send them, how they run."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest

from app.aggregates import ORDER, PRODUCT
from app.domain import orders, products
from app.domain.catalog_import import ImportCatalog
from app.domain.rules import CommandStruct
from app.kernel.dead_letter_commands import OperatorCommand
from app.kernel.messages import Actor, CommandEnvelope, Outcome
from app.kernel.registry import Registry
from app.wiring import build_registry

TOKENIZED: list[str] = []


async def fake_tokenize(card_number: str) -> str:
    """A gateway stand-in that remembers what it was asked to tokenize."""
    TOKENIZED.append(card_number)
    return f"tok_{len(TOKENIZED)}"


async def fake_runner(envelope: CommandEnvelope, bus: Any) -> Outcome:
    return Outcome(command_id=envelope.command_id, status="succeeded")


REGISTRY: Registry = build_registry(fake_tokenize, fake_runner, {}, fake_runner)
PUBLIC = [spec.name for spec in REGISTRY.specs if spec.public]
INTERNAL = [spec.name for spec in REGISTRY.specs if not spec.public]
ADMIN = frozenset({"admin"})
CUSTOMER = frozenset({"customer"})
DOCUMENTED = {
    "CreateProduct": (ADMIN, "sync"),
    "RenameProduct": (ADMIN, "sync"),
    "ChangePrice": (ADMIN, "sync"),
    "RestockProduct": (ADMIN, "sync"),
    "DiscontinueProduct": (ADMIN, "sync"),
    "ImportCatalog": (ADMIN, "async"),
    "PlaceOrder": (CUSTOMER, "async"),
    "CancelOrder": (frozenset({"customer", "admin"}), "sync"),
    "ShipOrder": (ADMIN, "sync"),
    "RetryDeadLetter": (ADMIN, "async"),
    "DiscardDeadLetter": (ADMIN, "async"),
    "RetryAllDeadLetters": (ADMIN, "async"),
}
"""API.md's table of commands: who may send each one, and how it runs."""


def declared(base: type[msgspec.Struct]) -> set[str]:
    """The tags of the app's Structs under `base` (a test's own subclasses left out, and the
    bases that only share fields with their subclasses, e.g. ProductCommand)."""
    found = set()
    for cls in base.__subclasses__():
        if cls.__module__.startswith("app.") and not cls.__subclasses__():
            tag = cls.__struct_config__.tag
            found |= {tag} if isinstance(tag, str) else set()
        found |= declared(cls)
    return found


def test_the_registry_knows_every_declared_command() -> None:
    """A command Struct that nothing registers would be refused as unknown: caught here."""
    assert set(REGISTRY.names) == declared(CommandStruct) | declared(OperatorCommand)
    assert all(name in REGISTRY for name in [*PUBLIC, *INTERNAL])
    assert "Nope" not in REGISTRY


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_documented_commands_roles_and_modes(name: str) -> None:
    spec = REGISTRY.spec(name)
    roles, mode = DOCUMENTED[name]
    assert spec.public is True
    assert spec.roles == roles
    assert spec.mode == mode
    assert spec.name == name


@pytest.mark.parametrize("name", PUBLIC)
def test_a_public_command_names_the_roles_that_may_send_it(name: str) -> None:
    assert REGISTRY.spec(name).roles


@pytest.mark.parametrize("name", INTERNAL)
def test_internal_commands_are_not_public_and_need_no_role(name: str) -> None:
    spec = REGISTRY.spec(name)
    assert spec.public is False
    assert spec.roles == frozenset()
    assert spec.mode == "sync"


def test_the_public_decoder_holds_the_public_commands_only() -> None:
    assert REGISTRY.public_decoder.tags == sorted(PUBLIC)
    assert not set(INTERNAL) & set(REGISTRY.public_decoder.tags)


@pytest.mark.parametrize(
    "name, kind",
    [
        ("CreateProduct", PRODUCT),
        ("ReserveStock", PRODUCT),
        ("ReturnStock", PRODUCT),
        ("PlaceOrder", ORDER),
        ("CancelOrder", ORDER),
        ("ShipOrder", ORDER),
        ("ConfirmOrder", ORDER),
        ("ImportCatalog", None),
    ],
)
def test_each_command_targets_its_aggregate_kind(name: str, kind: Any) -> None:
    assert REGISTRY.spec(name).kind is kind


def test_product_commands_address_the_product_by_sku() -> None:
    spec = REGISTRY.spec("RestockProduct")
    assert spec.aggregate_id(products.RestockProduct("MUG-001", 1)) == "MUG-001"
    assert spec.decide is products.restock


def test_order_commands_address_the_order_by_id() -> None:
    order_id = "o" + "a" * 28
    assert REGISTRY.spec("ShipOrder").aggregate_id(orders.ShipOrder(order_id)) == order_id
    assert REGISTRY.spec("ConfirmOrder").aggregate_id(orders.ConfirmOrder(order_id)) == order_id


def test_cancel_checks_ownership_on_the_write_side() -> None:
    assert REGISTRY.spec("CancelOrder").authorize is orders.owner_or_admin


def test_import_runs_through_its_runner() -> None:
    spec = REGISTRY.spec("ImportCatalog")
    assert spec.runner is fake_runner
    assert spec.decide is None


def test_place_order_gets_a_fresh_order_id_and_looks_up_its_products() -> None:
    spec = REGISTRY.spec("PlaceOrder")
    assert spec.assign_id is not None
    first, second = spec.assign_id(), spec.assign_id()
    assert re.fullmatch(r"o[0-9a-f]{28}", first)
    assert first != second
    assert spec.wire_type is orders.PlaceOrderRequest
    assert spec.lookups is not None
    cmd = orders.PlaceOrder(
        [orders.LineRequest("MUG-001", 1), orders.LineRequest("TEA-002", 2)], "4242", "t"
    )
    assert list(spec.lookups(cmd)) == [(PRODUCT, "MUG-001"), (PRODUCT, "TEA-002")]


async def test_place_order_is_prepared_into_a_token_and_last_four_digits() -> None:
    spec = REGISTRY.spec("PlaceOrder")
    assert spec.prepare is not None
    lines = [orders.LineRequest("MUG-001", 2)]
    request = orders.PlaceOrderRequest(lines, "4242424242424242")
    TOKENIZED.clear()
    prepared = await spec.prepare(request, Actor("alice", CUSTOMER))
    assert prepared == orders.PlaceOrder(lines, "4242", "tok_1")
    assert TOKENIZED == ["4242424242424242"]
    assert b"4242424242424242" not in msgspec.json.encode(prepared)


def test_stored_bodies_decode_by_name() -> None:
    body = msgspec.json.encode(products.ReserveStock("MUG-001", "o1", 3))
    assert REGISTRY.decode_body("ReserveStock", body) == products.ReserveStock("MUG-001", "o1", 3)
    rows = b'{"type":"ImportCatalog","products":[{"sku":"AAA","name":"a","price_cents":1}]}'
    assert isinstance(REGISTRY.decode_body("ImportCatalog", rows), ImportCatalog)
