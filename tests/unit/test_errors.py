"""Problem objects: their shape, titles and statuses, and the errors that make them."""

from __future__ import annotations

import msgspec
import pytest

from app.domain.orders import rejection
from app.kernel.errors import (
    TITLES,
    CommandRejected,
    Forbidden,
    NotFound,
    ProblemError,
    Unauthenticated,
    ValidationFailed,
    problem,
)
from app.kernel.messages import FieldError, Problem


def test_a_problem_has_the_public_shape() -> None:
    made = problem("insufficient_stock", 409, "Only 1 left")
    assert msgspec.json.decode(msgspec.json.encode(made)) == {
        "type": "/problems/insufficient_stock",
        "title": "Insufficient stock",
        "status": 409,
        "code": "insufficient_stock",
        "detail": "Only 1 left",
    }


def test_errors_appear_only_for_validation() -> None:
    errors = [FieldError("$.lines[0].quantity", "Expected `int` <= 100")]
    made = problem("validation_failed", 422, "x", errors)
    assert msgspec.json.decode(msgspec.json.encode(made))["errors"] == [
        {"path": "$.lines[0].quantity", "message": "Expected `int` <= 100"}
    ]
    assert "errors" not in msgspec.json.decode(msgspec.json.encode(problem("forbidden", 403)))


@pytest.mark.parametrize("code", sorted(TITLES))
def test_known_codes_have_their_titles(code: str) -> None:
    made = problem(code, 400)
    assert made.title == TITLES[code]
    assert made.type == f"/problems/{code}"


@pytest.mark.parametrize(
    "code, title",
    [
        ("sku_exists", "Sku exists"),
        ("order_not_cancellable", "Order not cancellable"),
        ("unknown_product", "Unknown product"),
    ],
)
def test_other_codes_get_a_readable_title(code: str, title: str) -> None:
    assert problem(code, 409).title == title


def test_an_explicit_title_wins() -> None:
    assert problem("unknown_command", 422, title="Custom").title == "Custom"


@pytest.mark.parametrize(
    "error, status, code",
    [
        (CommandRejected("sku_exists", "MUG-001"), 409, "sku_exists"),
        (Unauthenticated(), 401, "unauthenticated"),
        (Forbidden(), 403, "forbidden"),
        (Forbidden("cross-site", code="csrf_failed"), 403, "csrf_failed"),
        (NotFound(), 404, "not_found"),
        (ValidationFailed([FieldError("$", "x")]), 422, "validation_failed"),
        (
            ValidationFailed([FieldError("$.type", "x")], code="unknown_command"),
            422,
            "unknown_command",
        ),
        (ProblemError("malformed_json"), 400, "malformed_json"),
    ],
)
def test_each_error_maps_to_its_status(error: ProblemError, status: int, code: str) -> None:
    made = error.to_problem()
    assert (error.status, error.code) == (status, code)
    assert (made.status, made.code, made.type) == (status, code, f"/problems/{code}")


def test_validation_failed_lists_every_path() -> None:
    errors = [FieldError("$.sku", "Required"), FieldError("$.products[3].price_cents", "Too low")]
    error = ValidationFailed(errors)
    assert error.detail == "$.sku: Required; $.products[3].price_cents: Too low"
    assert error.to_problem() == Problem(
        type="/problems/validation_failed",
        title="Some fields are not valid",
        status=422,
        code="validation_failed",
        detail="$.sku: Required; $.products[3].price_cents: Too low",
        errors=errors,
    )


def test_the_exception_message_names_code_and_detail() -> None:
    assert str(CommandRejected("insufficient_stock", "Only 1 left")) == (
        "insufficient_stock: Only 1 left"
    )
    assert Unauthenticated().detail == "This needs a signed-in user"


@pytest.mark.parametrize(
    "reason, title",
    [
        ("insufficient_stock", "Not enough stock"),
        ("product_discontinued", "A product was discontinued"),
        ("unknown_product", "A product does not exist"),
        ("payment_declined", "The card was declined"),
        ("payment_unavailable", "The payment service did not answer"),
    ],
)
def test_rejection_reasons_have_titles(reason: str, title: str) -> None:
    assert rejection(reason) == problem(reason, 409, title, title=title)
    assert rejection(reason, "Only 1 left").detail == "Only 1 left"


def test_an_unknown_rejection_reason_still_makes_a_problem() -> None:
    assert rejection("gateway_on_fire") == problem("gateway_on_fire", 409, "gateway_on_fire")
