"""The admin's forms: CSV/JSON rows for an import, and errors placed by field."""

from __future__ import annotations

from typing import Any

import pytest

from app.domain.catalog_import import ImportCatalog, ProductRow
from app.kernel.errors import ValidationFailed
from app.kernel.messages import CommandEnvelope, FieldError, Outcome
from app.web.forms import FORMS, FormState, parse_rows, with_errors
from app.wiring import build_registry


async def fake_tokenize(card_number: str) -> str:
    raise AssertionError("not used")


async def fake_runner(envelope: CommandEnvelope, bus: Any) -> Outcome:
    raise AssertionError("not used")


DECODER = build_registry(fake_tokenize, fake_runner, {}).public_decoder
MUG = {"sku": "MUG-001", "name": "Blue mug", "price_cents": "1200", "initial_stock": "40"}
TEA = {"sku": "TEA-002", "name": "Green tea", "price_cents": "350"}


# --- parse_rows ------------------------------------------------------------------------------


def test_csv_with_a_header() -> None:
    text = "sku,name,price_cents,initial_stock\nMUG-001,Blue mug,1200,40\nTEA-002,Green tea,350\n"
    assert parse_rows(text) == [MUG, TEA]


def test_csv_without_a_header() -> None:
    assert parse_rows("MUG-001,Blue mug,1200,40\nTEA-002,Green tea,350") == [MUG, TEA]


@pytest.mark.parametrize("header", ["SKU,NAME,PRICE_CENTS", " sku , name ", "sku"])
def test_a_header_of_column_names_in_any_case_is_skipped(header: str) -> None:
    assert parse_rows(f"{header}\nTEA-002,Green tea,350") == [TEA]


def test_a_first_row_that_is_not_exactly_the_column_names_is_data() -> None:
    assert parse_rows("SKU,Name,Price\nTEA-002,Green tea,350") == [
        {"sku": "SKU", "name": "Name", "price_cents": "Price"},
        TEA,
    ]


def test_blank_lines_and_blank_rows_are_skipped() -> None:
    text = "\n\nMUG-001,Blue mug,1200,40\n\n  ,  , \n\nTEA-002,Green tea,350\n\n"
    assert parse_rows(text) == [MUG, TEA]


def test_cells_are_trimmed_and_empty_cells_left_out() -> None:
    assert parse_rows(" TEA-002 , Green tea ,350,  ") == [TEA]
    assert parse_rows("TEA-002,,350") == [{"sku": "TEA-002", "price_cents": "350"}]


def test_quoted_cells_may_hold_commas() -> None:
    assert parse_rows('MUG-001,"Mug, blue",1200') == [
        {"sku": "MUG-001", "name": "Mug, blue", "price_cents": "1200"}
    ]


def test_extra_columns_are_kept_to_be_refused() -> None:
    assert parse_rows("MUG-001,Blue mug,1200,40,red,XL") == [{**MUG, "extra": ["red", "XL"]}]


@pytest.mark.parametrize("text", ["", "   ", "\n\n"])
def test_nothing_gives_no_rows(text: str) -> None:
    assert parse_rows(text) == []


def test_a_json_list() -> None:
    text = '[{"sku": "MUG-001", "name": "Blue mug", "price_cents": 1200}, {"sku": "X"}]'
    assert parse_rows(text) == [
        {"sku": "MUG-001", "name": "Blue mug", "price_cents": 1200},
        {"sku": "X"},
    ]


def test_a_single_json_object_is_one_row() -> None:
    assert parse_rows('  {"sku": "MUG-001"}  ') == [{"sku": "MUG-001"}]


def test_broken_json_is_an_error_on_the_text_field() -> None:
    with pytest.raises(ValidationFailed) as info:
        parse_rows('[{"sku": "MUG-001",')
    assert info.value.errors is not None
    [error] = info.value.errors
    assert error.path == "$.csv"
    assert error.message.startswith("Not valid JSON: ")


def test_parsed_rows_convert_to_an_import() -> None:
    text = "sku,name,price_cents,initial_stock\nMUG-001,Blue mug,1200,40\nTEA-002,Green tea,350"
    command = DECODER.convert({"type": "ImportCatalog", "products": parse_rows(text)}, strict=False)
    assert command == ImportCatalog(
        [ProductRow("MUG-001", "Blue mug", 1200, 40), ProductRow("TEA-002", "Green tea", 350, 0)]
    )


def test_bad_rows_are_reported_by_row() -> None:
    text = "MUG-001,Blue mug,0\nTEA-002,Green tea,350,1,oops\nmug,Mug,12"
    document = {"type": "ImportCatalog", "products": parse_rows(text)}
    with pytest.raises(ValidationFailed) as info:
        DECODER.convert(document, strict=False)
    assert info.value.errors is not None
    assert [e.path for e in info.value.errors] == [
        "$.products[0].price_cents",
        "$.products[1].extra",
        "$.products[2].sku",
    ]


def test_a_first_row_with_the_sku_sku_is_data() -> None:
    """SKU is a valid sku: such a row is a product, not a header."""
    assert parse_rows("SKU,Widget,100\nMUG-001,Blue mug,1200,40") == [
        {"sku": "SKU", "name": "Widget", "price_cents": "100"},
        MUG,
    ]


# --- with_errors -----------------------------------------------------------------------------


def test_field_errors_go_beside_their_fields() -> None:
    state = with_errors(
        FormState(FORMS["CreateProduct"]),
        [
            FieldError("$.sku", "Bad sku"),
            FieldError("$.price_cents", "Too low"),
            FieldError("$.sku", "Second message"),
            FieldError("$.type", "Unknown command"),
        ],
    )
    assert state.errors == {"sku": "Bad sku", "price_cents": "Too low"}
    assert state.other_errors == [FieldError("$.type", "Unknown command")]


def test_errors_of_fields_a_form_does_not_show_are_listed_apart() -> None:
    state = with_errors(FormState(FORMS["RenameProduct"]), [FieldError("$.price_cents", "x")])
    assert state.errors == {}
    assert state.other_errors == [FieldError("$.price_cents", "x")]


def test_import_row_errors_are_listed_under_the_rows() -> None:
    errors = [
        FieldError("$.products[3].price_cents", "Expected `int` >= 1"),
        FieldError("$.products", "Expected `array` of length >= 1"),
    ]
    state = with_errors(FormState(FORMS["ImportCatalog"]), errors)
    assert state.errors == {"csv": "Some rows are not valid (see below)"}
    assert state.other_errors == errors


def test_an_import_text_error_goes_beside_the_text() -> None:
    state = with_errors(FormState(FORMS["ImportCatalog"]), [FieldError("$.csv", "Not valid JSON")])
    assert state.errors == {"csv": "Not valid JSON"}
    assert state.other_errors == []


def test_every_admin_form_names_a_public_command() -> None:
    assert set(FORMS) <= set(DECODER.tags)
    assert [f.name for f in FORMS["CreateProduct"].fields] == [
        "sku",
        "name",
        "price_cents",
        "initial_stock",
    ]
