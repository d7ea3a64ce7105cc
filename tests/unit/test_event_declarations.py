"""Lists of events are derived from the unions that declare them, never kept by hand.

Each event projection decodes exactly the events its type names — every event of a union it
declares — and counts the others without decoding them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from app.domain import orders as o
from app.domain import products as p
from app.domain.events import DomainEvent, event_decoder
from app.domain.rules import EventStruct
from app.kernel import unions
from app.kernel.decisions import event_fields
from app.kernel.messages import StoredEvent
from app.kernel.projection import Applied, EventProjection
from app.processes import fulfilment
from app.projections.catalog import CatalogProjection
from app.projections.low_stock import LowStockProjection
from app.projections.orders import OrdersProjection
from app.projections.sales import SalesProjection
from app.projections.timeline import TimelineProjection


def sample(info: msgspec.inspect.Type) -> Any:
    """A value of the described type, as JSON would carry it."""
    match info:
        case msgspec.inspect.StrType():
            return "X-1"
        case msgspec.inspect.IntType() | msgspec.inspect.FloatType():
            return 3
        case msgspec.inspect.BoolType():
            return True
        case msgspec.inspect.ListType():
            return [sample(info.item_type)]
        case msgspec.inspect.StructType():
            return {f.encode_name: sample(f.type) for f in info.fields}
        case _:
            raise AssertionError(f"no sample for {info}: teach `sample` this type")


def example(event_type: type[msgspec.Struct]) -> msgspec.Struct:
    """An instance of `event_type` with every field filled."""
    document = sample(msgspec.inspect.type_info(event_type))
    return msgspec.convert(document, event_type)


def entry(event: msgspec.Struct, version: int = 2) -> dict[str, str]:
    """The events-stream entry the commit writes for `event`."""
    stored = StoredEvent(
        type=unions.tag(type(event)),
        aggregate="thing",
        aggregate_id="X-1",
        version=version,
        command_id="c1-0",
        at=1_700_000_000.0,
        data=msgspec.Raw(msgspec.json.encode(event)),
    )
    fields = event_fields(stored)
    return dict(zip(fields[::2], fields[1::2], strict=True))


def test_domain_events_are_the_product_and_the_order_events() -> None:
    every = unions.members(DomainEvent)
    assert every == (*unions.members(p.ProductEvent), *unions.members(o.OrderEvent))
    assert len(unions.tags(DomainEvent)) == len(every)  # no tag written twice


@pytest.mark.parametrize("event_type", unions.members(DomainEvent), ids=lambda t: t.__name__)
def test_the_event_decoder_decodes_every_domain_event(event_type: type[msgspec.Struct]) -> None:
    event = example(event_type)
    assert event_decoder().decode(msgspec.json.encode(event)) == event


WHOLE: list[tuple[Callable[[], EventProjection[Any]], object]] = [
    (CatalogProjection, p.ProductEvent),
    (OrdersProjection, o.OrderEvent),
    (TimelineProjection, o.OrderEvent),
    (SalesProjection, o.OrderEvent),
]
"""Projections of a whole aggregate's events, and the union they are declared with."""


@pytest.mark.parametrize(("make", "union"), WHOLE, ids=[make.__name__ for make, _ in WHOLE])
def test_a_projection_of_a_union_decodes_each_of_its_events(
    make: Callable[[], EventProjection[Any]], union: object
) -> None:
    projection = make()
    assert projection.handles == unions.tags(union)
    for event_type in unions.members(union):
        event = example(event_type)
        version, item = projection.decode(entry(event))
        assert version == ("thing:X-1", 2)
        assert isinstance(item, Applied), event_type
        assert item.event == event
        assert item.stored.type == event_type.__name__


@pytest.mark.parametrize(("make", "union"), WHOLE, ids=[make.__name__ for make, _ in WHOLE])
def test_events_of_another_aggregate_are_counted_never_decoded(
    make: Callable[[], EventProjection[Any]], union: object
) -> None:
    projection = make()
    others = [t for t in unions.members(DomainEvent) if t not in unions.members(union)]
    assert others
    for event_type in others:
        fields = {**entry(example(event_type), version=5), "e": "{not json"}
        assert projection.decode(fields) == (("thing:X-1", 5), None)


def test_low_stock_handles_exactly_the_events_that_move_stock_or_discontinue() -> None:
    projection = LowStockProjection(threshold=5)
    assert projection.handles == {
        "ProductCreated",
        "ProductRestocked",
        "ProductDiscontinued",
        "StockReserved",
        "StockReleased",
        "StockCommitted",
        "StockReturned",
    }
    for ignored in (p.ProductRenamed, p.PriceChanged):
        fields = {**entry(example(ignored), version=4), "e": "{not json"}
        assert projection.decode(fields) == (("thing:X-1", 4), None)  # counted: not a gap


def test_fulfilment_decodes_the_order_events_it_reacts_to_only() -> None:
    handled = fulfilment.HANDLED
    assert handled == {
        "OrderPlaced",
        "OrderStockReserved",
        "OrderPaid",
        "OrderCancelled",
        "OrderRejected",
    }


class ProductPhotographed(EventStruct, frozen=True):
    """An event the domain does not have: a projection of a union holding it decodes it."""

    sku: str


class PriceWatch(EventProjection[p.PriceChanged]):
    name = "price_watch"


class Extended(EventProjection[p.ProductEvent | ProductPhotographed]):
    name = "extended"


class Child(CatalogProjection):
    name = "child"


def test_a_declared_type_is_what_a_projection_handles() -> None:
    assert PriceWatch.handles == {"PriceChanged"}
    assert Extended.handles == unions.tags(p.ProductEvent) | {"ProductPhotographed"}
    photographed = ProductPhotographed("X-1")
    _, item = Extended().decode(entry(photographed))
    assert item is not None and item.event == photographed
    assert Child.handles == CatalogProjection.handles  # a subclass keeps its parent's


def test_unions_name_their_struct_classes_only() -> None:
    assert unions.members(p.PriceChanged) == (p.PriceChanged,)
    assert unions.tags(p.PriceChanged | p.ProductRenamed) == {"PriceChanged", "ProductRenamed"}
    with pytest.raises(TypeError, match="not a msgspec Struct"):
        unions.members(int | p.PriceChanged)

    class Untagged(msgspec.Struct):
        pass

    with pytest.raises(TypeError, match="needs a string tag"):
        unions.tags(Untagged)


def test_a_hand_kept_list_of_events_is_refused() -> None:
    with pytest.raises(TypeError, match="declare its events as EventProjection"):

        class Listed(EventProjection[p.PriceChanged]):
            handles = frozenset({"PriceChanged"})
