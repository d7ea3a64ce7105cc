"""Low stock (admin): a sorted set of the active skus with few units available, by how few."""

from __future__ import annotations

import pytest

from app.domain import products as p
from app.domain.products import Stock
from app.projections import keys
from app.projections.low_stock import LowStockProjection
from tests.support.projection_harness import PARTITION, Stamped, project_events

SKU = "MUG-001"
THRESHOLD = 5
LOW_STOCK = LowStockProjection(THRESHOLD)


def test_a_product_created_with_few_units_is_listed_by_what_is_available() -> None:
    run = project_events(LOW_STOCK, [p.ProductCreated(SKU, "Blue mug", 1200, Stock(3, 0, 0))])
    assert run.writes == [("zadd", keys.low_stock(PARTITION), {SKU: 3.0})]
    assert run.changes == [("admin", "sales")]  # the sales dashboard shows the list


def test_exactly_the_threshold_counts_as_low() -> None:
    run = project_events(LOW_STOCK, [p.ProductRestocked(SKU, 1, Stock(THRESHOLD, 0, 0))])
    assert run.writes == [("zadd", keys.low_stock(PARTITION), {SKU: float(THRESHOLD)})]


def test_reserved_units_are_not_available() -> None:
    run = project_events(LOW_STOCK, [p.StockReserved(SKU, "o1", 8, Stock(10, 8, 0))])
    assert run.writes == [("zadd", keys.low_stock(PARTITION), {SKU: 2.0})]


def test_a_restock_over_the_threshold_takes_the_product_off_the_list() -> None:
    run = project_events(LOW_STOCK, [p.ProductRestocked(SKU, 20, Stock(22, 0, 0))])
    assert run.writes == [("zrem", keys.low_stock(PARTITION), SKU)]
    assert run.changes == [("admin", "sales")]  # the sales dashboard shows the list


@pytest.mark.parametrize(
    ("event", "listed"),
    [
        (p.StockReleased(SKU, "o1", 2, Stock(4, 0, 0)), 4.0),
        (p.StockCommitted(SKU, "o1", 2, Stock(1, 0, 2)), 1.0),
        (p.StockReturned(SKU, "o1", 2, Stock(6, 0, 0)), None),
    ],
    ids=["released", "committed", "returned"],
)
def test_every_stock_movement_lists_or_unlists_the_product_by_what_is_left(
    event: p.StockReleased | p.StockCommitted | p.StockReturned, listed: float | None
) -> None:
    run = project_events(LOW_STOCK, [event])
    expected = ("zadd", keys.low_stock(PARTITION), {SKU: listed}) if listed is not None else None
    assert run.writes == [expected or ("zrem", keys.low_stock(PARTITION), SKU)]


def test_a_discontinued_product_leaves_the_list_whatever_its_stock() -> None:
    run = project_events(LOW_STOCK, [p.ProductDiscontinued(SKU)])
    assert run.writes == [("zrem", keys.low_stock(PARTITION), SKU)]
    assert run.changes == [("admin", "sales")]  # the sales dashboard shows the list


@pytest.mark.parametrize(
    "event",
    [p.ProductRenamed(SKU, "Red mug"), p.PriceChanged(SKU, 900)],
    ids=lambda event: type(event).__name__,
)
def test_a_rename_or_a_price_change_leaves_low_stock_alone(
    event: p.ProductRenamed | p.PriceChanged,
) -> None:
    run = project_events(LOW_STOCK, [event])
    assert (run.writes, run.changes) == ([], [])
    assert run.versions == {f"product:{SKU}": 1}  # still counted: the next event is no gap


def test_the_last_movement_of_a_batch_decides_whether_the_product_is_listed() -> None:
    run = project_events(
        LOW_STOCK,
        [
            p.StockReserved(SKU, "o1", 8, Stock(10, 8, 0)),
            p.ProductRestocked(SKU, 20, Stock(30, 8, 0)),
        ],
    )
    assert run.writes == [("zrem", keys.low_stock(PARTITION), SKU)]  # listed, then not: one ZREM
    assert run.changes == [("admin", "sales")]  # the sales dashboard shows the list


def test_a_duplicate_is_skipped_and_a_gap_is_recorded() -> None:
    run = project_events(
        LOW_STOCK,
        [
            Stamped(p.StockReserved(SKU, "o1", 8, Stock(10, 8, 0)), version=3),
            Stamped(p.StockReleased(SKU, "o1", 8, Stock(10, 0, 0)), version=6),
        ],
        applied_before={f"product:{SKU}": 3},
    )
    assert run.writes == [("zrem", keys.low_stock(PARTITION), SKU)]
    assert run.gaps == [f"product:{SKU}: after v3 came v6 (2-0)"]
