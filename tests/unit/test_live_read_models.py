"""The read models' declarations (app/read_models/): every piece there, and tied to the others.

Leaving a piece out of a live read model is never silent:

* a projection announcing a view that no read model declares, or a declared view that
  nothing feeds: the first two tests;
* a declared fragment (pushed, or a region's) whose template is missing: the third (and the
  web process does not start: `live_view` looks its templates up);
* a page naming a live region nobody declared, or a declared region no page names: the
  region tests (and such a page fails to render);
* a query reading a row its projection does not write: the row tests here, and
  `HashRow.reader`, which refuses a view of fields the row lacks when the query is imported;
* an event not handled where its union requires it, or a view named by a plain string:
  mypy (tests/unit/test_type_checks.py).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import msgspec
import pytest
from jinja2 import DictLoader, Environment, TemplateNotFound

from app.config import load_settings
from app.domain import orders as o
from app.domain import products as p
from app.domain.products import Stock
from app.kernel.notices import StatusNotice, notice_fields
from app.kernel.read_model_writes import redis_text
from app.kernel.rows import HashRow
from app.kernel.views import View
from app.projections import keys, registry
from app.projections.catalog import CatalogProjection, ProductView
from app.projections.orders import ORDER, OrdersProjection
from app.projections.sales import TOTALS, SalesProjection, SalesTotals
from app.projections.timeline import TimelineProjection
from app.queries import catalog, orders
from app.read_models import DECLARED
from app.web import live_routes
from app.web.live import live_view
from app.web.live_models import Audience, Region, audiences
from app.web.live_views import status_change
from app.web.render import TEMPLATES, templates
from tests.support import storefront_events as examples
from tests.support.projection_harness import PARTITION, Command, Stamped, project_events

ROOT = Path(__file__).resolve().parents[2]
PROJECTIONS = registry.build(registry.ALL, load_settings({}))


def announced() -> dict[View, set[str]]:
    """Each view something announces, and what: the projections (over an example of every
    message of their streams) and the command-status notices."""
    found: dict[View, set[str]] = defaultdict(set)
    for projection in PROJECTIONS:
        for example in examples.on_stream(projection.stream(0)):
            for view, _key in project_events(projection, [example]).changes:
                found[view].add(projection.name)
    change = status_change("1-0", notice_fields(StatusNotice("c1-0", "alice")))
    assert change is not None
    found[change.view].add("status notices")
    return found


def test_every_view_a_projection_announces_has_a_live_read_model() -> None:
    declared = {model.view for model in DECLARED}
    assert set(announced()) <= declared, {
        v: by for v, by in announced().items() if v not in declared
    }


def test_every_live_read_model_is_fed_by_a_notice_or_pushed_every_few_seconds() -> None:
    fed = announced()
    for model in DECLARED:
        assert model.view in fed or (model.every and model.refresh), model.view
    assert fed[View("orders")] == {"orders", "timeline"}  # two projections, one view


def test_every_projection_is_declared_once_with_its_worker() -> None:
    declared = [feed.name for model in DECLARED for feed in model.projections]
    assert sorted(declared) == sorted(registry.ALL)
    assert registry.NOTIFIER == ("notifications",)
    assert "notifications" not in registry.REBUILDABLE  # its users' read flags are no event's
    assert set(registry.AUDITED) == {"catalog", "low_stock", "orders", "timeline"}


def test_topics_shared_by_read_models_are_declared_for_one_audience() -> None:
    assert audiences(DECLARED) == {
        "catalog": Audience.ANYONE,
        "orders": Audience.OWNER_OR_ADMINS,
        "commands": Audience.OWNER,
        "notifications": Audience.OWNER,
        "admin": Audience.ADMINS,
    }


# --- templates and regions --------------------------------------------------------------------


def declared_templates() -> set[str]:
    names = set()
    for model in DECLARED:
        names.update(model.fragment.templates)
        for region in model.all_regions:
            names.update((region.fragment or model.fragment).templates)
    return names


@pytest.mark.parametrize("name", sorted(declared_templates()))
def test_every_declared_fragment_has_its_template(name: str) -> None:
    assert (TEMPLATES / "fragments" / f"{name}.html").is_file()


NAMED = re.compile(r"live_region\(\s*\"([^\"]+)\"")


def named_regions() -> dict[str, list[str]]:
    """Each region a template names with `live_region("...")`, and the templates naming it."""
    found: dict[str, list[str]] = defaultdict(list)
    for path in sorted(TEMPLATES.rglob("*.html")):
        for name in NAMED.findall(path.read_text()):
            found[name].append(str(path.relative_to(TEMPLATES)))
    return found


def test_every_region_a_template_names_is_declared_and_every_declared_one_is_named() -> None:
    named = named_regions()
    pages = {model.page.path for model in DECLARED if model.page is not None}
    assert set(named) == set(live_routes.REGIONS) - pages, named  # a page's is pages/live.html's


def test_a_template_naming_an_undeclared_region_fails_to_render() -> None:
    env = templates().env
    page = env.from_string('{% from "live.html" import live_region %}<p {{ live_region("nope") }}>')
    with pytest.raises(LookupError, match="no live region 'nope'"):
        page.render()


def test_the_macro_writes_each_regions_route_swap_and_target() -> None:
    env = templates().env
    page = env.from_string(
        '{% from "live.html" import live_region %}'
        '<a {{ live_region("catalog", after="MUG-1") }}><b {{ live_region("order", "o 1/2") }}>'
    )
    assert page.render() == (
        '<a data-live-region hx-get="/fragments/catalog?after=MUG-1" hx-trigger="sf:refresh"'
        ' hx-swap="innerHTML">'
        '<b data-live-region hx-get="/fragments/orders/o%201%2F2" hx-trigger="sf:refresh"'
        ' hx-swap="outerHTML" hx-target="find section">'
    )


async def _nothing(_asked: Any) -> list[Any]:
    return []


def test_a_regions_url_fills_its_parameters_in_order_and_keeps_only_given_query_values() -> None:
    region: Region[Any, Any] = Region("r", "/fragments/a/{one}/b/{two}", _nothing)
    assert region.url("x", 2, all="1", after="") == "/fragments/a/x/b/2?all=1"
    with pytest.raises(TypeError, match="too few"):
        region.url("x")
    with pytest.raises(TypeError, match="too many"):
        region.url("x", "y", "z")


def test_every_declared_region_and_page_is_a_route() -> None:
    paths = {route.path for route in live_routes.routes}  # type: ignore[attr-defined]
    regions = {region.path for model in DECLARED for region in model.all_regions}
    pages = {model.page.path for model in DECLARED if model.page is not None}
    assert paths == regions | pages


def test_a_live_view_is_made_for_every_declaration_and_needs_its_templates() -> None:
    services: Any = object()
    env = templates().env
    assert [live_view(model, services, env).name for model in DECLARED] == [
        model.view for model in DECLARED
    ]
    (model,) = [model for model in DECLARED if model.view == "catalog"]
    with pytest.raises(TemplateNotFound, match=r"fragments/product_row\.html"):
        live_view(model, services, Environment(loader=DictLoader({})))


# --- rows: what a projection writes, its query reads back -----------------------------------


def stored_hash(writes: list[Command], key: str) -> dict[str, str]:
    """The hash `key` as Redis holds it after these writes (HSETs and HINCRBYs)."""
    found: dict[str, str] = {}
    for command in writes:
        if command[0] == "hset" and command[1] == key:
            found.update(command[2])
        elif command[0] == "hincrby" and command[1] == key:
            found[command[2]] = str(int(found.get(command[2], "0")) + command[3])
    return found


def test_the_catalog_query_reads_what_the_catalog_projection_writes() -> None:
    run = project_events(
        CatalogProjection(),
        [
            p.ProductCreated("MUG-1", "Blue mug", 1200, Stock(3, 0, 0)),
            p.ProductRenamed("MUG-1", "Red mug"),
            p.StockReserved("MUG-1", "o1", 2, Stock(3, 2, 0)),
        ],
    )
    record = stored_hash(run.writes, keys.product(PARTITION, "MUG-1"))
    assert catalog.product_view(record) == ProductView("MUG-1", "Red mug", 1200, 1, 0, "active")


def test_the_order_query_reads_what_the_orders_and_timeline_projections_write() -> None:
    lines = [o.OrderLine("MUG-1", 2, 1200)]
    history = [
        Stamped(o.OrderPlaced("o1", "alice", lines, 2400, "4242"), 1, at=100.0),
        Stamped(o.OrderCancelled("o1", "alice", "placed", lines, 2400, False, "oops", "alice"), 2),
        Stamped(o.OrderRefunded("o1", "alice", "re_1", 2400), 3),
    ]
    record = stored_hash(
        project_events(OrdersProjection(), history).writes, keys.order(PARTITION, "o1")
    )
    timeline = project_events(TimelineProjection(), history).writes
    steps = [value for command in timeline for value in command[2:]]
    view = orders._view(record, steps)
    assert (view.order_id, view.customer, view.status, view.reason) == (
        "o1",
        "alice",
        "cancelled",
        "oops",
    )
    assert (view.total_cents, view.card_last4, view.refunded) == (2400, "4242", True)
    assert view.lines == [orders.Line("MUG-1", 2, 1200)]
    assert view.placed_at == "1970-01-01T00:01:40.000Z"
    assert [step.status for step in view.timeline] == ["placed", "cancelled", "refunded"]


def test_an_order_not_refunded_stores_no_refunded_field_as_before() -> None:
    placed = o.OrderPlaced("o1", "alice", [o.OrderLine("MUG-1", 2, 1200)], 2400, "4242")
    record = stored_hash(
        project_events(OrdersProjection(), [placed]).writes, keys.order(PARTITION, "o1")
    )
    assert set(record) == {
        "order_id", "customer", "status", "lines", "total_cents", "card_last4",
        "placed_at", "updated_at", "reason",
    }  # fmt: skip
    assert ORDER.read(record).refunded is None


def test_the_sales_query_reads_the_totals_the_sales_projection_counts() -> None:
    lines = [o.OrderLine("MUG-1", 2, 1200)]
    run = project_events(
        SalesProjection(),
        [
            o.OrderPlaced("o1", "alice", lines, 2400, "4242"),
            o.OrderConfirmed("o1", "alice", lines, 2400),
            o.OrderRefunded("o1", "alice", "re_1", 2400),
        ],
    )
    totals = TOTALS.read(stored_hash(run.writes, keys.sales_totals(PARTITION)))
    assert totals == SalesTotals(revenue_cents=2400, refunded_cents=2400, orders_placed=1)


class _Row(msgspec.Struct, frozen=True):
    name: str
    count: int
    lines: list[str]
    done: bool = False
    note: str | None = None


def test_a_hash_row_stores_text_numbers_bools_as_1_or_0_and_the_rest_as_json() -> None:
    row = HashRow(_Row)
    stored = {k: redis_text(v) for k, v in row.whole(_Row("a", 3, ["x"], True)).items()}
    assert stored == {"name": "a", "count": "3", "lines": '["x"]', "done": "1"}  # None: not stored
    assert row.read(stored) == _Row("a", 3, ["x"], True)
    assert row.some(count=4, done=False) == {"count": 4, "done": 0}


class _Sparse(msgspec.Struct, frozen=True, omit_defaults=True):
    name: str
    featured: bool = False


def test_a_row_declared_omit_defaults_stores_a_field_only_once_it_differs_from_its_default() -> (
    None
):
    row = HashRow(_Sparse)
    assert row.whole(_Sparse("a")) == {"name": "a"}  # a row written before the field existed
    assert row.whole(_Sparse("a", featured=True)) == {"name": "a", "featured": 1}
    assert row.read({"name": "a"}) == _Sparse("a")
    assert HashRow(_Row).whole(_Row("a", 0, [])) == {
        "name": "a",
        "count": 0,
        "lines": b"[]",
        "done": 0,
    }


def test_a_hash_row_refuses_fields_it_does_not_have() -> None:
    row = HashRow(_Row)

    class Renamed(msgspec.Struct):
        name: str
        total: int

    class Retyped(msgspec.Struct):
        count: str

    with pytest.raises(KeyError, match="total"):
        row.some(total=1)
    with pytest.raises(KeyError, match="total"):
        row.field("total")
    with pytest.raises(TypeError, match=r"Renamed\.total"):
        row.reader(Renamed)
    with pytest.raises(TypeError, match=r"Retyped\.count"):
        row.reader(Retyped)


# --- where the declarations are read --------------------------------------------------------


def test_the_workers_read_the_declarations_without_the_web_server_or_the_templates() -> None:
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, workers.projector, workers.notifier, workers.commands\n"
            "print(' '.join(m for m in sys.modules if m.split('.')[0] in ('starlette', 'jinja2')))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == ""
