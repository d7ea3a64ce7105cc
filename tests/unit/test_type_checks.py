"""mypy --strict is what stops a command registered with another command's handler, a
handler that misses an event of its union, a view named by a plain string and a read model
whose loader and fragment disagree: small modules, wrong and right, type-checked.

One mypy run checks every module (its cache in a temporary directory), in a process of its
own: in this one it would raise the recursion limit and retune the garbage collector for the
tests that follow. Each test reads the errors of its own module.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.domain import products as p
from app.kernel import unions

ROOT = Path(__file__).resolve().parents[2]

REGISTRATION = """
from app.aggregates import ORDER
from app.domain import orders, products
from app.kernel.registry import CommandSpec, Registry
from app.wiring import order, product


def _order_id(cmd: orders.OrderCommand) -> str:
    return cmd.order_id


REGISTRY = Registry(
    [
        {spec},
        product(products.ChangePrice, products.change_price),
    ]
)
"""

PROJECTION = """
from collections.abc import Iterable
from typing import assert_never

from app.domain import products as p
from app.domain.rules import EventStruct
from app.kernel.projection import Applied, EventProjection
from app.kernel.read_model_writes import ReadModelWrites
from app.kernel.views import Change, View


class ProductPhotographed(EventStruct, frozen=True):
    sku: str


Events = {union}
SKUS = View("skus")


class Skus(EventProjection[Events]):
    name = "skus"

    def apply(self, item: Applied[Events], tx: ReadModelWrites) -> Iterable[Change]:
        event = item.event
        match event:
            case {cases}:
                tx.zadd("skus", {{event.sku: 0}})
            case _:
                assert_never(event)
        return [Change({view}, event.sku)]
"""

READ_MODEL = """
from app.projections.catalog import CATALOG, CatalogProjection
from app.queries import catalog
from app.queries.catalog import ProductView
from app.queries.orders import OrderView
from app.services import Services
from app.web.live_models import Audience, Feed, Fragment, LiveReadModel


def shown(item: {shown}) -> dict[str, object]:
    return {{"item": item}}


DECLARED: LiveReadModel[Services, ProductView] = LiveReadModel(
    view=CATALOG,
    projections=(Feed(CatalogProjection),),
    load=lambda services, skus: catalog.get_products(services.read_side, skus),
    fragment=Fragment(("product_row",), shown),
    watchers=Audience.ANYONE,
)
"""


def registration(spec: str) -> str:
    return REGISTRATION.format(spec=spec)


def projection(union: str, handled: list[str], view: str = "SKUS") -> str:
    cases = " | ".join(f"{name}()" for name in handled)
    return PROJECTION.format(union=union, cases=cases, view=view)


def real_wiring(pairing: str, wrong: str) -> str:
    """app/wiring.py with one pairing of a command and its handler replaced."""
    source = (ROOT / "app" / "wiring.py").read_text()
    assert pairing in source
    return source.replace(pairing, wrong)


PRODUCT_EVENTS = [f"p.{event.__name__}" for event in unions.members(p.ProductEvent)]

CASES: dict[str, tuple[str, list[str]]] = {
    "registered_right": (
        registration(
            "product(products.RenameProduct, products.rename),\n"
            "        order(orders.ConfirmOrder, orders.confirm),\n"
            "        CommandSpec(orders.ShipOrder, ORDER, _order_id, orders.ship)"
        ),
        [],
    ),
    "registered_with_another_commands_handler": (
        registration("product(products.RenameProduct, products.restock)"),
        ['Argument 2 to "product" has incompatible type', "RestockProduct"],
    ),
    "registered_with_another_aggregates_handler": (
        registration("order(orders.ConfirmOrder, products.commit)"),
        ['Argument 2 to "order" has incompatible type', "Decision[Product]"],
    ),
    "spec_with_another_commands_handler": (
        registration("CommandSpec(orders.ShipOrder, ORDER, _order_id, orders.cancel)"),
        ['Argument 4 to "CommandSpec" has incompatible type', "CancelOrder"],
    ),
    "app_wiring_with_another_commands_handler": (
        real_wiring(
            "product(products.RenameProduct, products.rename)",
            "product(products.RenameProduct, products.restock)",
        ),
        ['Argument 2 to "product" has incompatible type', "RestockProduct"],
    ),
    "projection_of_every_event": (projection("p.ProductEvent", PRODUCT_EVENTS), []),
    "projection_missing_an_event": (
        projection("p.ProductEvent", PRODUCT_EVENTS[:-1]),
        ['"assert_never" has incompatible type', PRODUCT_EVENTS[-1].removeprefix("p.")],
    ),
    "projection_of_a_union_with_a_new_event": (
        projection("p.ProductEvent | ProductPhotographed", PRODUCT_EVENTS),
        ['"assert_never" has incompatible type "ProductPhotographed"'],
    ),
    "projection_naming_its_view_by_a_string": (
        projection("p.ProductEvent", PRODUCT_EVENTS, view='"skus"'),
        ['Argument 1 to "Change" has incompatible type "str"; expected "View"'],
    ),
    "read_model_whose_fragment_shows_what_it_loads": (READ_MODEL.format(shown="ProductView"), []),
    "read_model_whose_fragment_shows_another_row": (
        READ_MODEL.format(shown="OrderView"),
        ['Argument 2 to "Fragment" has incompatible type "Callable[[OrderView]', "ProductView"],
    ),
}


@pytest.fixture(scope="module")
def errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """mypy --strict over every case: each case's error lines, by case."""
    folder = tmp_path_factory.mktemp("type_checks")
    paths = {}
    for name, (source, _) in CASES.items():
        paths[name] = folder / f"{name}.py"
        paths[name].write_text(source)
    mypy = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--cache-dir",
            str(folder / "mypy_cache"),
            *(str(path) for path in paths.values()),
        ],
        cwd=ROOT,  # where mypy finds `app` and the project's configuration
        capture_output=True,
        text=True,
        check=False,
    )
    assert not mypy.stderr, mypy.stderr
    lines = mypy.stdout.splitlines()
    unclaimed = [line for line in lines if not any(line.startswith(str(p)) for p in paths.values())]
    assert not unclaimed, unclaimed
    return {
        name: [line for line in lines if line.startswith(f"{path}:") and ": error:" in line]
        for name, path in paths.items()
    }


@pytest.mark.parametrize("case", sorted(CASES))
def test_mypy_reports_exactly_what_is_wrong(case: str, errors: dict[str, list[str]]) -> None:
    _, expected = CASES[case]
    found = errors[case]
    if not expected:
        assert found == []
        return
    assert len(found) == 1, found
    for fragment in expected:
        assert fragment in found[0], found[0]
