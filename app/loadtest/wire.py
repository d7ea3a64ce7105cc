"""The parts of API.md's messages the load test reads and sends, as msgspec Structs."""

from __future__ import annotations

import msgspec

FINAL = frozenset({"succeeded", "failed"})
APPROVED_CARD = "4242424242424242"


class SignedIn(msgspec.Struct, frozen=True):
    """POST /api/session's body."""

    username: str
    roles: list[str]
    csrf_token: str


class Accepted(msgspec.Struct, frozen=True):
    """A command reply (202 accepted, or 200 for a sync command)."""

    command_id: str
    status: str


class Problem(msgspec.Struct, frozen=True):
    code: str = ""
    detail: str = ""


class Step(msgspec.Struct, frozen=True):
    name: str
    at: str | None = None


class CommandStatus(msgspec.Struct, frozen=True):
    """GET /api/commands/<id>."""

    command_id: str
    status: str
    steps: list[Step] = []
    error: Problem | None = None


class Push(msgspec.Struct, frozen=True):
    """One /api/ws message, of any type; fields a type lacks stay None."""

    type: str
    command_id: str | None = None
    status: str | None = None
    view: str | None = None
    key: str | None = None
    position: str | None = None
    code: str | None = None
    error: Problem | None = None


class Product(msgspec.Struct, frozen=True):
    sku: str
    available: int
    status: str


class Line(msgspec.Struct, frozen=True):
    sku: str
    quantity: int


class PlaceOrder(msgspec.Struct, frozen=True, tag=True):
    lines: list[Line]
    card_number: str = APPROVED_CARD


class CreateProduct(msgspec.Struct, frozen=True, tag=True):
    sku: str
    name: str
    price_cents: int
    initial_stock: int


class ProductRow(msgspec.Struct, frozen=True):
    """A row of ImportCatalog: CreateProduct's fields without its type."""

    sku: str
    name: str
    price_cents: int
    initial_stock: int


class ImportCatalog(msgspec.Struct, frozen=True, tag=True):
    products: list[ProductRow]


class Subscribe(msgspec.Struct, frozen=True):
    subscribe: list[str]


_frames = msgspec.json.Decoder(list[Push] | Push)


def pushes(frame: str | bytes) -> list[Push]:
    """A frame holds one message or (batched pushes) a JSON array of them."""
    decoded = _frames.decode(frame)
    return decoded if isinstance(decoded, list) else [decoded]
