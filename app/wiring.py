"""Which commands exist, who may send them and how they run: the storefront's registry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from app.aggregates import ORDER, PRODUCT
from app.domain import orders, products
from app.domain.catalog_import import ImportCatalog
from app.domain.orders import Order
from app.domain.products import Product
from app.domain.rules import ADMIN, CUSTOMER
from app.kernel.dead_letter_commands import dead_letter_specs
from app.kernel.messages import Actor
from app.kernel.partitions import new_id
from app.kernel.pause_commands import pause_specs
from app.kernel.rebuild_commands import rebuild_specs
from app.kernel.registry import CommandSpec, Context, Decision, Registry, Runner
from app.processes.order_progress import place_order_step

Tokenize = Callable[[str], Awaitable[str]]
ProductCmd = TypeVar("ProductCmd", bound=products.ProductCommand)
OrderCmd = TypeVar("OrderCmd", bound=orders.OrderCommand)
ADMINS = frozenset({ADMIN})
CUSTOMERS = frozenset({CUSTOMER})


def _sku(cmd: products.ProductCommand) -> str:
    return cmd.sku


def _order_id(cmd: orders.OrderCommand) -> str:
    return cmd.order_id


def product(
    command: type[ProductCmd],
    decide: Callable[[ProductCmd, Product | None, Context], Decision[Product]],
    *,
    public: bool = True,
) -> CommandSpec[ProductCmd, Product]:
    """A product's command: public ones are the admins'."""
    roles = ADMINS if public else frozenset()
    return CommandSpec(command, PRODUCT, _sku, decide, roles, public=public)


def order(
    command: type[OrderCmd],
    decide: Callable[[OrderCmd, Order | None, Context], Decision[Order]],
) -> CommandSpec[OrderCmd, Order]:
    """An internal command of an order (the fulfilment process sends them)."""
    return CommandSpec(command, ORDER, _order_id, decide, public=False)


def build_registry(
    tokenize: Tokenize,
    import_runner: Runner,
    consumer_groups: dict[str, str],
    rebuild_runner: Runner | None = None,
) -> Registry:
    async def prepare_order(request: orders.PlaceOrderRequest, actor: Actor) -> orders.PlaceOrder:
        token = await tokenize(request.card_number)
        return orders.PlaceOrder(request.lines, request.card_number[-4:], token)

    return Registry(
        [
            product(products.CreateProduct, products.create),
            product(products.RenameProduct, products.rename),
            product(products.ChangePrice, products.change_price),
            product(products.RestockProduct, products.restock),
            product(products.DiscontinueProduct, products.discontinue),
            CommandSpec(  # a hold: settled by the fulfilment sweeper if its order is lost
                products.ReserveStock,
                PRODUCT,
                _sku,
                products.reserve,
                public=False,
                tracked=True,
            ),
            product(products.ReleaseStock, products.release, public=False),
            CommandSpec(
                products.CommitStock,
                PRODUCT,
                _sku,
                products.commit,
                public=False,
                lookups=lambda c: [(ORDER, c.order_id)],  # a lost hold sells if still paid
            ),
            product(products.ReturnStock, products.give_back, public=False),
            CommandSpec(
                ImportCatalog,
                None,
                lambda _c: "",
                roles=ADMINS,
                mode="async",
                runner=import_runner,
            ),
            CommandSpec(
                orders.PlaceOrder,
                ORDER,
                lambda _c: "",
                orders.place,
                CUSTOMERS,
                mode="async",
                assign_id=lambda: new_id("o"),
                lookups=lambda c: [(PRODUCT, line.sku) for line in c.lines],
                wire_type=orders.PlaceOrderRequest,
                prepare=prepare_order,
                follow=place_order_step,
                shed_when_busy=True,
            ),
            CommandSpec(
                orders.CancelOrder,
                ORDER,
                _order_id,
                orders.cancel,
                frozenset({CUSTOMER, ADMIN}),
                authorize=orders.owner_or_admin,
            ),
            CommandSpec(orders.ShipOrder, ORDER, _order_id, orders.ship, ADMINS),
            order(orders.MarkOrderReserved, orders.mark_reserved),
            order(orders.MarkOrderPaid, orders.mark_paid),
            order(orders.ConfirmOrder, orders.confirm),
            order(orders.RejectOrder, orders.reject),
            order(orders.MarkOrderRefunded, orders.mark_refunded),
            *dead_letter_specs(consumer_groups, ADMINS),
            *pause_specs(consumer_groups, ADMINS),
            *(rebuild_specs(rebuild_runner, ADMINS) if rebuild_runner else ()),
        ]
    )
