"""The Product aggregate's decide functions: invariants, idempotency, events matching state."""

from __future__ import annotations

import random
from typing import Any

import msgspec
import pytest

from app.domain import products as p
from app.domain.products import Product, Stock
from app.kernel.errors import CommandRejected
from app.kernel.messages import Actor
from app.kernel.registry import Context, Decision

SKU = "MUG-001"
ADMIN = Actor("admin", frozenset({"admin"}))


def ctx(aggregate_id: str = SKU) -> Context:
    """A context as the bus would build it for a command on one product."""
    return Context(command_id="c1-0", actor=ADMIN, now=1_700_000_000.0, aggregate_id=aggregate_id)


def product(**changes: Any) -> Product:
    """An active product with 10 on hand, changed as asked."""
    base = Product(sku=SKU, name="Blue mug", price_cents=1200, on_hand=10)
    return msgspec.structs.replace(base, **changes)


def rejected(call: Any, code: str) -> CommandRejected:
    """Run `call`, expect a CommandRejected with `code` (409), and return it."""
    with pytest.raises(CommandRejected) as info:
        call()
    assert info.value.code == code
    assert info.value.status == 409
    assert info.value.to_problem().code == code
    return info.value


def assert_no_op(decision: Decision[Product]) -> None:
    """Nothing changes and nothing is said: no state, no event."""
    assert decision.state is None
    assert list(decision.events) == []
    assert list(decision.integration) == []
    assert decision.complete is True


def only_event(decision: Decision[Product]) -> Any:
    assert len(decision.events) == 1
    return decision.events[0]


# --- create ----------------------------------------------------------------------------------


def test_create_makes_an_active_product_and_says_so() -> None:
    cmd = p.CreateProduct(SKU, "Blue mug", 1200, 40)
    decision = p.create(cmd, None, ctx())
    assert decision.state == Product(
        sku=SKU, name="Blue mug", price_cents=1200, on_hand=40, reserved=0, sold=0
    )
    assert decision.state.status == "active"
    assert decision.state.reservations == {}
    assert list(decision.events) == [p.ProductCreated(SKU, "Blue mug", 1200, Stock(40, 0, 0))]


def test_create_defaults_to_no_stock() -> None:
    decision = p.create(p.CreateProduct(SKU, "Blue mug", 1200), None, ctx())
    assert decision.state is not None
    assert decision.state.on_hand == 0
    assert only_event(decision).stock == Stock(0, 0, 0)


def test_create_on_an_existing_sku_is_refused() -> None:
    error = rejected(
        lambda: p.create(p.CreateProduct(SKU, "Other", 5), product(), ctx()), "sku_exists"
    )
    assert SKU in error.detail


def test_create_on_a_discontinued_sku_is_still_refused() -> None:
    existing = product(status="discontinued")
    rejected(lambda: p.create(p.CreateProduct(SKU, "Again", 5), existing, ctx()), "sku_exists")


# --- rename / change price / discontinue ----------------------------------------------------


def test_rename_changes_the_name() -> None:
    decision = p.rename(p.RenameProduct(SKU, "Red mug"), product(), ctx())
    assert decision.state == product(name="Red mug")
    assert list(decision.events) == [p.ProductRenamed(SKU, "Red mug")]


def test_rename_to_the_same_name_emits_nothing() -> None:
    assert_no_op(p.rename(p.RenameProduct(SKU, "Blue mug"), product(), ctx()))


def test_change_price_changes_the_price() -> None:
    decision = p.change_price(p.ChangePrice(SKU, 999), product(), ctx())
    assert decision.state == product(price_cents=999)
    assert list(decision.events) == [p.PriceChanged(SKU, 999)]


def test_change_price_to_the_same_price_emits_nothing() -> None:
    assert_no_op(p.change_price(p.ChangePrice(SKU, 1200), product(), ctx()))


def test_discontinue_marks_the_product() -> None:
    decision = p.discontinue(p.DiscontinueProduct(SKU), product(), ctx())
    assert decision.state == product(status="discontinued")
    assert list(decision.events) == [p.ProductDiscontinued(SKU)]


def test_discontinue_twice_emits_nothing() -> None:
    assert_no_op(p.discontinue(p.DiscontinueProduct(SKU), product(status="discontinued"), ctx()))


def test_discontinue_keeps_existing_reservations() -> None:
    held = product(reserved=3, reservations={"o1": 3})
    decision = p.discontinue(p.DiscontinueProduct(SKU), held, ctx())
    assert decision.state is not None
    assert decision.state.reserved == 3
    assert decision.state.reservations == {"o1": 3}


@pytest.mark.parametrize(
    "decide, cmd",
    [
        (p.rename, p.RenameProduct(SKU, "x")),
        (p.change_price, p.ChangePrice(SKU, 5)),
        (p.restock, p.RestockProduct(SKU, 5)),
        (p.discontinue, p.DiscontinueProduct(SKU)),
        (p.reserve, p.ReserveStock(SKU, "o1", 1)),
        (p.give_back, p.ReturnStock(SKU, "o1", 1)),
    ],
    ids=["rename", "change_price", "restock", "discontinue", "reserve", "give_back"],
)
def test_commands_on_an_unknown_product_are_refused(decide: Any, cmd: Any) -> None:
    error = rejected(lambda: decide(cmd, None, ctx()), "unknown_product")
    assert error.detail == f"There is no product {SKU}"


# --- restock ---------------------------------------------------------------------------------


def test_restock_adds_to_on_hand_and_reports_stock() -> None:
    held = product(reserved=4, sold=2, reservations={"o1": 4})
    decision = p.restock(p.RestockProduct(SKU, 5), held, ctx())
    assert decision.state == msgspec.structs.replace(held, on_hand=15)
    assert list(decision.events) == [p.ProductRestocked(SKU, 5, Stock(15, 4, 2))]


def test_restock_of_a_discontinued_product_is_refused() -> None:
    gone = product(status="discontinued")
    rejected(lambda: p.restock(p.RestockProduct(SKU, 5), gone, ctx()), "product_discontinued")


# --- reserve ---------------------------------------------------------------------------------


def test_reserve_holds_units_for_the_order() -> None:
    decision = p.reserve(p.ReserveStock(SKU, "o1", 3), product(), ctx())
    assert decision.state == product(reserved=3, reservations={"o1": 3})
    assert list(decision.events) == [p.StockReserved(SKU, "o1", 3, Stock(10, 3, 0))]
    assert decision.state.available == 7


def test_reserve_may_take_exactly_what_is_available() -> None:
    held = product(reserved=4, reservations={"o1": 4})
    decision = p.reserve(p.ReserveStock(SKU, "o2", 6), held, ctx())
    assert decision.state is not None
    assert decision.state.available == 0
    assert decision.state.reservations == {"o1": 4, "o2": 6}
    assert only_event(decision).stock == Stock(10, 10, 0)


def test_reserve_more_than_available_is_refused() -> None:
    held = product(reserved=4, reservations={"o1": 4})
    error = rejected(
        lambda: p.reserve(p.ReserveStock(SKU, "o2", 7), held, ctx()), "insufficient_stock"
    )
    assert error.detail == f"Only 6 of {SKU} left, 7 asked"


def test_reserve_on_a_discontinued_product_is_refused() -> None:
    gone = product(status="discontinued")
    rejected(lambda: p.reserve(p.ReserveStock(SKU, "o1", 1), gone, ctx()), "product_discontinued")


def test_reserve_twice_for_the_same_order_changes_nothing() -> None:
    first = p.reserve(p.ReserveStock(SKU, "o1", 3), product(), ctx())
    assert first.state is not None
    assert_no_op(p.reserve(p.ReserveStock(SKU, "o1", 3), first.state, ctx()))
    # even with another quantity: the order already holds its units
    assert_no_op(p.reserve(p.ReserveStock(SKU, "o1", 9), first.state, ctx()))


def test_a_repeated_reserve_is_a_no_op_even_after_discontinuation() -> None:
    held = product(reserved=3, reservations={"o1": 3}, status="discontinued")
    assert_no_op(p.reserve(p.ReserveStock(SKU, "o1", 3), held, ctx()))


# --- release / commit / give back ------------------------------------------------------------


def test_release_gives_back_what_the_order_holds() -> None:
    held = product(reserved=5, reservations={"o1": 3, "o2": 2})
    decision = p.release(p.ReleaseStock(SKU, "o1"), held, ctx())
    assert decision.state == product(reserved=2, reservations={"o2": 2})
    assert list(decision.events) == [p.StockReleased(SKU, "o1", 3, Stock(10, 2, 0))]


def test_release_acts_exactly_once() -> None:
    held = product(reserved=3, reservations={"o1": 3})
    once = p.release(p.ReleaseStock(SKU, "o1"), held, ctx())
    assert once.state is not None
    assert_no_op(p.release(p.ReleaseStock(SKU, "o1"), once.state, ctx()))


@pytest.mark.parametrize("state", [None, product(), product(reserved=2, reservations={"o2": 2})])
def test_release_of_an_order_holding_nothing_is_a_no_op(state: Product | None) -> None:
    assert_no_op(p.release(p.ReleaseStock(SKU, "o1"), state, ctx()))


def test_commit_moves_held_units_to_sold() -> None:
    held = product(reserved=5, reservations={"o1": 3, "o2": 2})
    decision = p.commit(p.CommitStock(SKU, "o1"), held, ctx())
    assert decision.state == product(on_hand=7, reserved=2, sold=3, reservations={"o2": 2})
    assert list(decision.events) == [p.StockCommitted(SKU, "o1", 3, Stock(7, 2, 3))]
    assert decision.state.available == 5


def test_commit_acts_exactly_once() -> None:
    held = product(reserved=3, reservations={"o1": 3})
    once = p.commit(p.CommitStock(SKU, "o1"), held, ctx())
    assert once.state is not None
    assert_no_op(p.commit(p.CommitStock(SKU, "o1"), once.state, ctx()))


@pytest.mark.parametrize("state", [None, product(), product(reserved=2, reservations={"o2": 2})])
def test_commit_of_an_order_holding_nothing_is_a_no_op(state: Product | None) -> None:
    assert_no_op(p.commit(p.CommitStock(SKU, "o1"), state, ctx()))


class _Order(msgspec.Struct, frozen=True):
    """What CommitStock looks up of an order: its status (the product module knows no Order)."""

    status: str


def paid_ctx(status: str = "paid") -> Context:
    return Context("c1-0", ADMIN, 1_700_000_000.0, SKU, lookups={"o1": _Order(status)})


@pytest.mark.parametrize("status", ["paid", "confirmed", "shipped"])
def test_a_lost_hold_of_an_order_that_keeps_its_units_is_sold_from_what_is_available(
    status: str,
) -> None:
    """A failover lost the hold: the units still leave the shelf, from what is available."""
    decision = p.commit(p.CommitStock(SKU, "o1", 3), product(), paid_ctx(status))
    assert decision.state == product(on_hand=7, sold=3)
    assert list(decision.events) == [p.StockCommitted(SKU, "o1", 3, Stock(7, 0, 3))]


@pytest.mark.parametrize("status", ["cancelled", "rejected", "reserved"])
def test_a_hold_released_by_its_orders_end_sells_nothing(status: str) -> None:
    assert_no_op(p.commit(p.CommitStock(SKU, "o1", 3), product(), paid_ctx(status)))


def test_a_commit_without_its_quantity_or_its_order_sells_nothing() -> None:
    assert_no_op(p.commit(p.CommitStock(SKU, "o1"), product(), paid_ctx()))
    assert_no_op(p.commit(p.CommitStock(SKU, "o1", 3), product(), ctx()))


def test_a_lost_hold_whose_units_are_gone_is_refused() -> None:
    short = product(on_hand=4, reserved=2, reservations={"o2": 2})
    with pytest.raises(CommandRejected) as refused:
        p.commit(p.CommitStock(SKU, "o1", 3), short, paid_ctx())
    assert refused.value.code == "insufficient_stock"


def test_release_after_commit_and_commit_after_release_do_nothing() -> None:
    held = product(reserved=3, reservations={"o1": 3})
    committed = p.commit(p.CommitStock(SKU, "o1"), held, ctx()).state
    released = p.release(p.ReleaseStock(SKU, "o1"), held, ctx()).state
    assert committed is not None and released is not None
    assert_no_op(p.release(p.ReleaseStock(SKU, "o1"), committed, ctx()))
    assert_no_op(p.commit(p.CommitStock(SKU, "o1"), released, ctx()))


def test_give_back_returns_sold_units_to_the_shelf() -> None:
    sold = product(on_hand=7, sold=3)
    decision = p.give_back(p.ReturnStock(SKU, "o1", 3), sold, ctx())
    assert decision.state == product(on_hand=10, sold=0)
    assert list(decision.events) == [p.StockReturned(SKU, "o1", 3, Stock(10, 0, 0))]


def test_give_back_of_units_still_held_releases_them() -> None:
    """A paid order cancelled before its stock was committed: the hold is released."""
    held = product(on_hand=10, reserved=3, reservations={"o1": 3})
    decision = p.give_back(p.ReturnStock(SKU, "o1", 3), held, ctx())
    assert decision.state == product(on_hand=10, reserved=0, reservations={})
    assert list(decision.events) == [p.StockReleased(SKU, "o1", 3, Stock(10, 0, 0))]


def test_give_back_never_makes_sold_negative() -> None:
    decision = p.give_back(p.ReturnStock(SKU, "o1", 5), product(sold=2), ctx())
    assert decision.state is not None
    assert (decision.state.on_hand, decision.state.sold) == (15, 0)


# --- invariants over random histories --------------------------------------------------------


def _random_command(rng: random.Random) -> tuple[Any, Any]:
    order = f"o{rng.randrange(6)}"
    choice = rng.randrange(7)
    if choice == 0:
        return p.restock, p.RestockProduct(SKU, rng.randint(1, 5))
    if choice in (1, 2):
        return p.reserve, p.ReserveStock(SKU, order, rng.randint(1, 6))
    if choice == 3:
        return p.release, p.ReleaseStock(SKU, order)
    if choice == 4:
        return p.commit, p.CommitStock(SKU, order)
    if choice == 5:
        return p.change_price, p.ChangePrice(SKU, rng.randint(1, 3))
    return p.rename, p.RenameProduct(SKU, rng.choice(["a", "b"]))


@pytest.mark.parametrize("seed", range(20))
def test_random_histories_keep_the_stock_invariants(seed: int) -> None:
    """on_hand ≥ reserved ≥ 0; reserved is what orders hold; every event's Stock is the state's."""
    rng = random.Random(seed)
    state = p.create(p.CreateProduct(SKU, "a", 1, rng.randint(0, 8)), None, ctx()).state
    assert state is not None
    for _ in range(200):
        decide, cmd = _random_command(rng)
        try:
            decision = decide(cmd, state, ctx())
        except CommandRejected as exc:
            assert exc.code == "insufficient_stock"
            continue
        if decision.state is None:
            assert list(decision.events) == []
            continue
        assert len(decision.events) == 1
        event = decision.events[0]
        state = decision.state
        if hasattr(event, "stock"):
            assert event.stock == state.stock
        assert state.on_hand >= state.reserved >= 0
        assert state.reserved == sum(state.reservations.values())
        assert all(quantity > 0 for quantity in state.reservations.values())
        assert state.sold >= 0
