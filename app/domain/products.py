"""The Product aggregate: catalog data and stock, with reservations held per order.

Over 300 lines, one job: the state, its commands, its events and the decisions between them
read best beside each other."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from app.domain.rules import (
    CommandStruct,
    EventStruct,
    InitialStock,
    PriceCents,
    ProductName,
    RestockQuantity,
    Sku,
)
from app.kernel.errors import CommandRejected
from app.kernel.registry import Context, Decision

ProductStatus = Literal["active", "discontinued"]


class Stock(msgspec.Struct, frozen=True):
    """Stock figures after an event, so projections never need to read before writing."""

    on_hand: int
    reserved: int
    sold: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class Product(msgspec.Struct, frozen=True, kw_only=True):
    sku: str
    name: str
    price_cents: int
    on_hand: int
    reserved: int = 0
    sold: int = 0
    status: ProductStatus = "active"
    reservations: dict[str, int] = {}
    """Units held per order id; a reservation is released or committed exactly once."""

    @property
    def stock(self) -> Stock:
        return Stock(self.on_hand, self.reserved, self.sold)

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


# --- commands ------------------------------------------------------------------------------


class ProductCommand(CommandStruct, frozen=True):
    """Base of the commands of one product, whose sku is the aggregate's id."""

    sku: str


class CreateProduct(ProductCommand, frozen=True):
    sku: Sku
    name: ProductName
    price_cents: PriceCents
    initial_stock: InitialStock = 0


class RenameProduct(ProductCommand, frozen=True):
    sku: Sku
    name: Annotated[ProductName, msgspec.Meta(title="New name")]


class ChangePrice(ProductCommand, frozen=True):
    sku: Sku
    price_cents: Annotated[PriceCents, msgspec.Meta(title="New price (cents)")]


class RestockProduct(ProductCommand, frozen=True):
    sku: Sku
    quantity: RestockQuantity


class DiscontinueProduct(ProductCommand, frozen=True):
    sku: Sku


class ReserveStock(ProductCommand, frozen=True):
    """Internal (order fulfilment): hold units for an order. Repeating it changes nothing."""

    sku: str
    order_id: str
    quantity: int


class ReleaseStock(ProductCommand, frozen=True):
    """Internal: give back whatever this order holds (nothing, if it holds nothing)."""

    sku: str
    order_id: str


class CommitStock(ProductCommand, frozen=True):
    """Internal: the order is paid; its held units leave the shelf as sold.

    `quantity`: what the order holds. If a failover lost the hold (the order's partition kept
    the reservation its MarkOrderReserved relied on, this one did not), the units are taken
    from what is available instead — while the order, looked up, still keeps what it bought.
    """

    sku: str
    order_id: str
    quantity: int = 0


class ReturnStock(ProductCommand, frozen=True):
    """Internal: a paid order was cancelled; its units go back (released, if still held)."""

    sku: str
    order_id: str
    quantity: int


# --- events --------------------------------------------------------------------------------


class ProductCreated(EventStruct, frozen=True):
    sku: str
    name: str
    price_cents: int
    stock: Stock


class ProductRenamed(EventStruct, frozen=True):
    sku: str
    name: str


class PriceChanged(EventStruct, frozen=True):
    sku: str
    price_cents: int


class ProductRestocked(EventStruct, frozen=True):
    sku: str
    quantity: int
    stock: Stock


class ProductDiscontinued(EventStruct, frozen=True):
    sku: str


class StockReserved(EventStruct, frozen=True):
    sku: str
    order_id: str
    quantity: int
    stock: Stock


class StockReleased(EventStruct, frozen=True):
    sku: str
    order_id: str
    quantity: int
    stock: Stock


class StockCommitted(EventStruct, frozen=True):
    sku: str
    order_id: str
    quantity: int
    stock: Stock


class StockReturned(EventStruct, frozen=True):
    sku: str
    order_id: str
    quantity: int
    stock: Stock


ProductEvent = (
    ProductCreated
    | ProductRenamed
    | PriceChanged
    | ProductRestocked
    | ProductDiscontinued
    | StockReserved
    | StockReleased
    | StockCommitted
    | StockReturned
)
"""Every product event: the one list of them (consumers derive theirs: kernel/unions.py)."""


# --- rules ---------------------------------------------------------------------------------


def unknown(sku: str) -> CommandRejected:
    return CommandRejected("unknown_product", f"There is no product {sku}")


def existing(state: Product | None, sku: str) -> Product:
    if state is None:
        raise unknown(sku)
    return state


def create(cmd: CreateProduct, state: Product | None, ctx: Context) -> Decision[Product]:
    if state is not None:
        raise CommandRejected("sku_exists", f"A product with sku {cmd.sku} already exists")
    product = Product(
        sku=cmd.sku, name=cmd.name, price_cents=cmd.price_cents, on_hand=cmd.initial_stock
    )
    return Decision(product, [ProductCreated(cmd.sku, cmd.name, cmd.price_cents, product.stock)])


def rename(cmd: RenameProduct, state: Product | None, ctx: Context) -> Decision[Product]:
    product = existing(state, cmd.sku)
    if product.name == cmd.name:
        return Decision()
    return Decision(
        msgspec.structs.replace(product, name=cmd.name), [ProductRenamed(cmd.sku, cmd.name)]
    )


def change_price(cmd: ChangePrice, state: Product | None, ctx: Context) -> Decision[Product]:
    product = existing(state, cmd.sku)
    if product.price_cents == cmd.price_cents:
        return Decision()
    return Decision(
        msgspec.structs.replace(product, price_cents=cmd.price_cents),
        [PriceChanged(cmd.sku, cmd.price_cents)],
    )


def restock(cmd: RestockProduct, state: Product | None, ctx: Context) -> Decision[Product]:
    product = existing(state, cmd.sku)
    if product.status == "discontinued":
        raise CommandRejected("product_discontinued", f"{cmd.sku} is discontinued")
    updated = msgspec.structs.replace(product, on_hand=product.on_hand + cmd.quantity)
    return Decision(updated, [ProductRestocked(cmd.sku, cmd.quantity, updated.stock)])


def discontinue(cmd: DiscontinueProduct, state: Product | None, ctx: Context) -> Decision[Product]:
    product = existing(state, cmd.sku)
    if product.status == "discontinued":
        return Decision()
    return Decision(
        msgspec.structs.replace(product, status="discontinued"), [ProductDiscontinued(cmd.sku)]
    )


def reserve(cmd: ReserveStock, state: Product | None, ctx: Context) -> Decision[Product]:
    product = existing(state, cmd.sku)
    if cmd.order_id in product.reservations:
        return Decision()
    if product.status == "discontinued":
        raise CommandRejected("product_discontinued", f"{cmd.sku} is discontinued")
    if product.available < cmd.quantity:
        raise CommandRejected(
            "insufficient_stock",
            f"Only {max(product.available, 0)} of {cmd.sku} left, {cmd.quantity} asked",
        )
    updated = msgspec.structs.replace(
        product,
        reserved=product.reserved + cmd.quantity,
        reservations={**product.reservations, cmd.order_id: cmd.quantity},
    )
    return Decision(updated, [StockReserved(cmd.sku, cmd.order_id, cmd.quantity, updated.stock)])


def _without(product: Product, order_id: str) -> dict[str, int]:
    return {k: v for k, v in product.reservations.items() if k != order_id}


def release(cmd: ReleaseStock, state: Product | None, ctx: Context) -> Decision[Product]:
    if state is None or cmd.order_id not in state.reservations:
        return Decision()
    quantity = state.reservations[cmd.order_id]
    updated = msgspec.structs.replace(
        state, reserved=state.reserved - quantity, reservations=_without(state, cmd.order_id)
    )
    return Decision(updated, [StockReleased(cmd.sku, cmd.order_id, quantity, updated.stock)])


ORDER_KEEPS_STOCK = frozenset({"paid", "confirmed", "shipped"})
"""Statuses of an order that keeps the units it bought (an order's status, as a string: the
product module knows no Order)."""


def commit(cmd: CommitStock, state: Product | None, ctx: Context) -> Decision[Product]:
    if state is None:
        return Decision()
    if cmd.order_id not in state.reservations:
        return _commit_unheld(cmd, state, ctx)
    quantity = state.reservations[cmd.order_id]
    updated = msgspec.structs.replace(
        state,
        on_hand=state.on_hand - quantity,
        reserved=state.reserved - quantity,
        sold=state.sold + quantity,
        reservations=_without(state, cmd.order_id),
    )
    return Decision(updated, [StockCommitted(cmd.sku, cmd.order_id, quantity, updated.stock)])


def _commit_unheld(cmd: CommitStock, product: Product, ctx: Context) -> Decision[Product]:
    """No hold for the order: committed before (its dedup record would have answered, unless
    it expired), released by a cancel, or lost in a failover. Only the last sells: the order
    still keeps its units, and the command says how many."""
    order = ctx.lookups.get(cmd.order_id)
    if cmd.quantity <= 0 or getattr(order, "status", None) not in ORDER_KEEPS_STOCK:
        return Decision()
    if product.available < cmd.quantity:
        raise CommandRejected(
            "insufficient_stock",
            f"The hold of {cmd.order_id} on {cmd.sku} was lost and only "
            f"{max(product.available, 0)} are left",
        )
    updated = msgspec.structs.replace(
        product, on_hand=product.on_hand - cmd.quantity, sold=product.sold + cmd.quantity
    )
    return Decision(updated, [StockCommitted(cmd.sku, cmd.order_id, cmd.quantity, updated.stock)])


def give_back(cmd: ReturnStock, state: Product | None, ctx: Context) -> Decision[Product]:
    product = existing(state, cmd.sku)
    if cmd.order_id in product.reservations:  # never committed: the hold is simply released
        return release(ReleaseStock(cmd.sku, cmd.order_id), product, ctx)
    updated = msgspec.structs.replace(
        product, on_hand=product.on_hand + cmd.quantity, sold=max(product.sold - cmd.quantity, 0)
    )
    return Decision(updated, [StockReturned(cmd.sku, cmd.order_id, cmd.quantity, updated.stock)])
