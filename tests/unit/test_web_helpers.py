"""Small pure helpers of the web and read sides: topic grants, money, masked emails, percentiles."""

from __future__ import annotations

import pytest

from app.adapters.users import mask_email
from app.domain.money import cents_of, dollars
from app.kernel.messages import ANONYMOUS, Actor, Problem
from app.queries.admin_status import percentile
from app.web.live_views import grant
from app.web.render import money, problem_text

ALICE = Actor("alice", frozenset({"customer"}))
ADMIN = Actor("admin", frozenset({"admin"}))
ALL = ["catalog", "orders", "commands", "notifications", "admin"]


# --- live_views.grant --------------------------------------------------------------------


def test_anonymous_users_may_watch_the_catalog_only() -> None:
    granted, refused = grant(ANONYMOUS, ALL)
    assert granted == {"catalog"}
    assert refused == ["orders", "commands", "notifications", "admin"]


def test_customers_watch_their_own_topics() -> None:
    granted, refused = grant(ALICE, ALL)
    assert granted == {"catalog", "orders:alice", "commands:alice", "notifications:alice"}
    assert refused == ["admin"]


def test_admins_watch_every_order_and_the_admin_views() -> None:
    granted, refused = grant(ADMIN, ALL)
    assert granted == {"catalog", "orders:*", "commands:admin", "notifications:admin", "admin"}
    assert refused == []


@pytest.mark.parametrize("actor", [ANONYMOUS, ALICE, ADMIN], ids=["anonymous", "alice", "admin"])
def test_unknown_topics_are_refused(actor: Actor) -> None:
    requested = ["orders:*", "orders:bob", "Catalog", "", "admin ", "commands:alice"]
    granted, refused = grant(actor, requested)
    assert granted == set()
    assert refused == requested


def test_a_customer_cannot_reach_another_customers_topics() -> None:
    granted, _ = grant(Actor("bob", frozenset({"customer"})), ["orders", "commands"])
    assert granted == {"orders:bob", "commands:bob"}


def test_nothing_requested_nothing_granted() -> None:
    assert grant(ALICE, []) == (set(), [])


# --- render.money ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cents, text",
    [
        (0, "$0.00"),
        (1, "$0.01"),
        (99, "$0.99"),
        (1200, "$12.00"),
        (3450, "$34.50"),
        (123_456_789, "$1,234,567.89"),
        (10_000_000, "$100,000.00"),
        (None, "-"),
    ],
)
def test_money(cents: int | None, text: str) -> None:
    assert money(cents) == text


# --- users.mask_email ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "email, masked",
    [
        ("alice@example.com", "a***@example.com"),
        ("a@example.com", "a***@example.com"),
        ("bob.smith+shop@mail.example.org", "b***@mail.example.org"),
        ("not-an-email", "***"),
        ("", "***"),
    ],
)
def test_mask_email(email: str, masked: str) -> None:
    assert mask_email(email) == masked


def test_a_masked_email_hides_the_name() -> None:
    assert "lice" not in mask_email("alice@example.com")


# --- admin_status.percentile -----------------------------------------------------------------


def test_percentile_of_nothing_is_zero() -> None:
    assert percentile([], 0.5) == 0.0


@pytest.mark.parametrize(
    "fraction, expected", [(0.0, 1.0), (0.5, 51.0), (0.95, 95.0), (0.99, 99.0), (1.0, 100.0)]
)
def test_percentile_picks_the_nearest_rank(fraction: float, expected: float) -> None:
    values = [float(v) for v in range(100, 0, -1)]  # unsorted on purpose
    assert percentile(values, fraction) == expected


def test_percentile_clamps_and_rounds() -> None:
    assert percentile([3.14159], 0.99) == 3.14
    assert percentile([1.0, 2.0], 2.0) == 2.0
    assert percentile([1.0, 2.0], -1.0) == 1.0


# --- render.problem_text ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "detail", "text"),
    [
        ("The card was declined", "The card was declined", "The card was declined"),
        (
            "Not enough stock",
            "Only 1 of MUG-001 left, 2 asked",
            "Not enough stock: Only 1 of MUG-001 left, 2 asked",
        ),
        ("Sold out", "Sold out.", "Sold out"),
        ("Forbidden", "", "Forbidden"),
        ("Unknown product", "Unknown product MUG-009", "Unknown product MUG-009"),
    ],
)
def test_a_problem_reads_as_one_sentence_that_says_nothing_twice(
    title: str, detail: str, text: str
) -> None:
    found = Problem(type="/problems/x", title=title, status=409, code="x", detail=detail)
    assert problem_text(found) == text


# --- domain.money ----------------------------------------------------------------------------


@pytest.mark.parametrize(("cents", "shown"), [(14300, "$143.00"), (5, "$0.05"), (-250, "-$2.50")])
def test_cents_are_shown_as_dollars(cents: int, shown: str) -> None:
    assert dollars(cents) == shown


@pytest.mark.parametrize("typed", ["12.345", "abc", "", "1,20", "12,5", "$", "1e3"])
def test_what_is_not_an_amount_in_cents_is_refused(typed: str) -> None:
    with pytest.raises(ValueError):
        cents_of(typed)
