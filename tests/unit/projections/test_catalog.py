"""The catalog read model: one hash per product (its row) and an index of every sku."""

from __future__ import annotations

import pytest

from app.domain import products as p
from app.domain.products import Stock
from app.kernel.read_model_writes import ReadModelWrites
from app.kernel.views import Change, View
from app.projections import keys
from app.projections.catalog import CatalogProjection
from tests.support.projection_harness import (
    PARTITION,
    Stamped,
    applied,
    project_events,
    redis_commands,
)

SKU = "MUG-001"
ROW = keys.product(PARTITION, SKU)
CATALOG = CatalogProjection()


def test_apply_records_the_writes_and_returns_the_views_it_changed() -> None:
    """What the runtime calls for each event it has not applied yet: the writes go on a
    ReadModelWrites (nothing is read, nothing sent), the changes tell the hubs what to push."""
    writes = ReadModelWrites(PARTITION)
    changes = CATALOG.apply(applied(p.ProductRenamed(SKU, "Red mug"), version=2), writes)
    assert list(changes) == [Change(View("catalog"), SKU)]
    assert redis_commands(writes) == [("hset", ROW, {"name": "Red mug"})]


def test_a_created_product_gets_its_row_and_joins_the_index() -> None:
    run = project_events(CATALOG, [p.ProductCreated(SKU, "Blue mug", 1200, Stock(40, 0, 0))])
    assert run.writes == [
        (
            "hset",
            ROW,
            {
                "sku": SKU,
                "name": "Blue mug",
                "price_cents": "1200",
                "status": "active",
                "available": "40",
                "on_hand": "40",
                "reserved": "0",
                "sold": "0",
            },
        ),
        ("zadd", keys.catalog_index(PARTITION), {SKU: 0.0}),
    ]
    assert run.changes == [("catalog", SKU)]


def test_a_rename_sets_the_name_only() -> None:
    run = project_events(CATALOG, [p.ProductRenamed(SKU, "Red mug")])
    assert run.writes == [("hset", ROW, {"name": "Red mug"})]
    assert run.changes == [("catalog", SKU)]


def test_a_price_change_sets_the_price_only() -> None:
    run = project_events(CATALOG, [p.PriceChanged(SKU, 1500)])
    assert run.writes == [("hset", ROW, {"price_cents": "1500"})]


def test_a_discontinued_product_keeps_its_row_with_its_status_changed() -> None:
    run = project_events(CATALOG, [p.ProductDiscontinued(SKU)])
    assert run.writes == [("hset", ROW, {"status": "discontinued"})]
    assert run.changes == [("catalog", SKU)]


def test_a_restock_sets_the_products_stock_fields_and_changes_the_catalog_row() -> None:
    run = project_events(CATALOG, [p.ProductRestocked(SKU, 5, Stock(15, 2, 3))])
    assert run.writes == [
        ("hset", ROW, {"available": "13", "on_hand": "15", "reserved": "2", "sold": "3"})
    ]
    assert run.changes == [("catalog", SKU)]


@pytest.mark.parametrize(
    "event",
    [
        p.StockReserved(SKU, "o1", 2, Stock(10, 2, 0)),
        p.StockReleased(SKU, "o1", 2, Stock(10, 0, 0)),
        p.StockCommitted(SKU, "o1", 2, Stock(8, 0, 2)),
        p.StockReturned(SKU, "o1", 2, Stock(10, 0, 0)),
    ],
    ids=lambda event: type(event).__name__,
)
def test_every_stock_movement_sets_the_stock_fields_from_the_figures_it_carries(
    event: p.StockReserved | p.StockReleased | p.StockCommitted | p.StockReturned,
) -> None:
    """The event carries the stock after it: the projection never reads before it writes."""
    stock = event.stock
    run = project_events(CATALOG, [event])
    assert run.writes == [
        (
            "hset",
            ROW,
            {
                "available": str(stock.on_hand - stock.reserved),
                "on_hand": str(stock.on_hand),
                "reserved": str(stock.reserved),
                "sold": str(stock.sold),
            },
        )
    ]


def test_events_of_one_product_in_a_batch_are_one_write_with_the_last_figures() -> None:
    run = project_events(
        CATALOG,
        [
            p.ProductRestocked(SKU, 5, Stock(15, 0, 0)),
            p.StockReserved(SKU, "o1", 2, Stock(15, 2, 0)),
            p.ProductRenamed(SKU, "Red mug"),
        ],
    )
    assert run.writes == [
        (
            "hset",
            ROW,
            {"available": "13", "on_hand": "15", "reserved": "2", "sold": "0", "name": "Red mug"},
        )
    ]
    assert run.changes == [("catalog", SKU)]  # announced once
    assert run.versions == {f"product:{SKU}": 3}


def test_an_event_at_or_below_the_applied_version_is_skipped_as_a_duplicate() -> None:
    run = project_events(
        CATALOG,
        [Stamped(p.ProductRenamed(SKU, "Old name"), version=2)],
        applied_before={f"product:{SKU}": 2},
    )
    assert (run.writes, run.changes, run.applied, run.versions) == ([], [], 0, {})


def test_a_redelivered_batch_applies_only_what_is_new() -> None:
    run = project_events(
        CATALOG,
        [
            Stamped(p.ProductRenamed(SKU, "Seen"), version=1),
            Stamped(p.PriceChanged(SKU, 900), version=2),
        ],
        applied_before={f"product:{SKU}": 1},
    )
    assert run.writes == [("hset", ROW, {"price_cents": "900"})]
    assert run.applied == 1


def test_a_version_that_jumps_is_applied_and_recorded_as_a_gap() -> None:
    run = project_events(
        CATALOG,
        [Stamped(p.PriceChanged(SKU, 900), version=4)],
        applied_before={f"product:{SKU}": 2},
    )
    assert run.writes == [("hset", ROW, {"price_cents": "900"})]
    assert run.gaps == [f"product:{SKU}: after v2 came v4 (1-0)"]
    assert run.versions == {f"product:{SKU}": 4}
