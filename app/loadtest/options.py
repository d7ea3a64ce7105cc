"""`storefront loadtest`'s arguments, parsed into one frozen Struct."""

from __future__ import annotations

import argparse

import msgspec

DEFAULT_USERS = "alice:alice-pass,bob:bob-pass"


class Account(msgspec.Struct, frozen=True):
    username: str
    password: str


class LoadOptions(msgspec.Struct, frozen=True, kw_only=True):
    url: str = "http://127.0.0.1:8000"
    shoppers: int = 8
    watchers: int = 0
    duration: float = 10.0
    orders: int = 0
    """A count of orders instead of a duration (0: run for `duration`)."""
    rate: float = 0.0
    """Open loop: order arrivals per second whatever completes (0: closed loop)."""
    users: list[Account] = []
    admin: Account = Account("admin", "admin-pass")
    create_products: int = 8
    """Products made for the run (prefixed `LT<run>-`, `stock` units each), so a load test
    never sells out the demo's catalog; 0 (`--use-catalog`): order the catalog's own."""
    stock: int = 1_000_000
    import_rows: int = 0
    procs: int = 1
    poll_after: float = 5.0
    order_timeout: float = 60.0
    sample: int = 1000
    json_path: str = ""
    quiet: bool = False
    ceiling: bool = False
    seed: int = 0

    @property
    def base_url(self) -> str:
        return self.url.rstrip("/")


DEFAULTS = LoadOptions()


def accounts(text: str) -> list[Account]:
    """`name:password,name:password` → accounts (argparse type)."""
    found = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        username, colon, password = item.partition(":")
        if not (username and colon and password):
            raise argparse.ArgumentTypeError(f"expected name:password, got {item!r}")
        found.append(Account(username, password))
    if not found:
        raise argparse.ArgumentTypeError("no accounts given")
    return found


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--url", default=DEFAULTS.url, help="the running deployment (default %(default)s)")
    add(
        "--shoppers",
        type=int,
        default=DEFAULTS.shoppers,
        help="closed loop: shoppers each placing an order and waiting for its outcome; "
        "open loop: HTTP connections the arrivals share (default %(default)s)",
    )
    add("--watchers", type=int, default=0, help="anonymous /api/ws sockets on the catalog")
    span = parser.add_mutually_exclusive_group()
    span.add_argument("--duration", type=float, default=DEFAULTS.duration, help="seconds")
    span.add_argument("--orders", type=int, default=0, help="place this many orders, then stop")
    add("--rate", type=float, default=0.0, help="open loop: order arrivals per second")
    add("--users", type=accounts, default=accounts(DEFAULT_USERS), help="customers, name:pass,…")
    add("--admin", type=accounts, default=[DEFAULTS.admin], help="the admin, name:pass")
    products = parser.add_mutually_exclusive_group()
    products.add_argument(
        "--create-products",
        type=positive,
        default=DEFAULTS.create_products,
        help="create K products (prefixed LT<run>-, --stock units each) to order from "
        "(default %(default)s)",
    )
    products.add_argument(
        "--use-catalog",
        action="store_true",
        help="order the catalog's own products instead (warns if the run may sell them out)",
    )
    add("--stock", type=int, default=DEFAULTS.stock, help="initial stock of created products")
    add("--import-rows", type=int, default=0, help="a burst: ImportCatalog of K rows at start")
    add("--procs", type=positive, default=1, help="client processes sharing the load")
    add(
        "--poll-after",
        type=float,
        default=DEFAULTS.poll_after,
        help="poll an order's status after this many seconds without a push",
    )
    add(
        "--order-timeout",
        type=float,
        default=DEFAULTS.order_timeout,
        help="give up on an order after this many seconds",
    )
    add(
        "--sample",
        type=int,
        default=DEFAULTS.sample,
        help="orders whose steps are fetched at the end (0: all)",
    )
    add("--json", dest="json_path", default="", metavar="PATH", help="write the report as JSON")
    add("--quiet", action="store_true", help="no live progress line")
    add(
        "--ceiling",
        action="store_true",
        help="measure this client: POST a constant body to URL/api/commands (a bare endpoint)",
    )
    add("--seed", type=int, default=0, help="random seed for order lines")


def options_from(args: argparse.Namespace) -> LoadOptions:
    fields = {f: getattr(args, f) for f in LoadOptions.__struct_fields__ if hasattr(args, f)}
    fields["admin"] = args.admin[0]
    if args.use_catalog:
        fields["create_products"] = 0
    if args.orders:
        fields["duration"] = 0.0
    return LoadOptions(**fields)
