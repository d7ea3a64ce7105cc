"""The admin's forms: derived from the commands' schemas, CSV/JSON rows for an import, and
errors placed by field."""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
import pytest
from starlette.datastructures import FormData

from app.domain.catalog_import import ImportCatalog, ProductRow
from app.domain.rules import ADMIN, CommandStruct, Sku
from app.kernel.errors import ValidationFailed, problem
from app.kernel.messages import CommandEnvelope, FieldError, Outcome
from app.kernel.validation import CommandDecoder
from app.web import console
from app.web.form_specs import CHECKED, ROWS_FILE, ROWS_TEXT, FormSpec, form_spec
from app.web.forms import (
    FormState,
    document_from_form,
    parse_rows,
    summary,
    with_errors,
    with_problem,
)
from app.web.pages.actions import ORDER_ACTIONS, forms_for
from app.web.render import Renderer, error_place, templates
from app.wiring import build_registry


async def fake_tokenize(card_number: str) -> str:
    raise AssertionError("not used")


async def fake_runner(envelope: CommandEnvelope, bus: Any) -> Outcome:
    raise AssertionError("not used")


REGISTRY = build_registry(fake_tokenize, fake_runner, {}, fake_runner)
DECODER = REGISTRY.public_decoder
FORMS = forms_for(REGISTRY)
ADMIN_COMMANDS = [s.name for s in REGISTRY.specs if s.public and ADMIN in s.roles]
COLUMNS = ("sku", "name", "price_cents", "initial_stock")
RENDER = Renderer(templates().env)
MUG = {"sku": "MUG-001", "name": "Blue mug", "price_cents": "1200", "initial_stock": "40"}
TEA = {"sku": "TEA-002", "name": "Green tea", "price_cents": "350"}


# --- parse_rows ------------------------------------------------------------------------------


def test_csv_with_a_header() -> None:
    text = "sku,name,price_cents,initial_stock\nMUG-001,Blue mug,1200,40\nTEA-002,Green tea,350\n"
    assert parse_rows(text, COLUMNS) == [MUG, TEA]


def test_csv_without_a_header() -> None:
    assert parse_rows("MUG-001,Blue mug,1200,40\nTEA-002,Green tea,350", COLUMNS) == [MUG, TEA]


@pytest.mark.parametrize("header", ["SKU,NAME,PRICE_CENTS", " sku , name ", "sku"])
def test_a_header_of_column_names_in_any_case_is_skipped(header: str) -> None:
    assert parse_rows(f"{header}\nTEA-002,Green tea,350", COLUMNS) == [TEA]


def test_a_first_row_that_is_not_exactly_the_column_names_is_data() -> None:
    assert parse_rows("SKU,Name,Price\nTEA-002,Green tea,350", COLUMNS) == [
        {"sku": "SKU", "name": "Name", "price_cents": "Price"},
        TEA,
    ]


def test_blank_lines_and_blank_rows_are_skipped() -> None:
    text = "\n\nMUG-001,Blue mug,1200,40\n\n  ,  , \n\nTEA-002,Green tea,350\n\n"
    assert parse_rows(text, COLUMNS) == [MUG, TEA]


def test_cells_are_trimmed_and_empty_cells_left_out() -> None:
    assert parse_rows(" TEA-002 , Green tea ,350,  ", COLUMNS) == [TEA]
    assert parse_rows("TEA-002,,350", COLUMNS) == [{"sku": "TEA-002", "price_cents": "350"}]


def test_quoted_cells_may_hold_commas() -> None:
    assert parse_rows('MUG-001,"Mug, blue",1200', COLUMNS) == [
        {"sku": "MUG-001", "name": "Mug, blue", "price_cents": "1200"}
    ]


def test_extra_columns_are_kept_to_be_refused() -> None:
    assert parse_rows("MUG-001,Blue mug,1200,40,red,XL", COLUMNS) == [
        {**MUG, "extra": ["red", "XL"]}
    ]


@pytest.mark.parametrize("text", ["", "   ", "\n\n"])
def test_nothing_gives_no_rows(text: str) -> None:
    assert parse_rows(text, COLUMNS) == []


def test_a_json_list() -> None:
    text = '[{"sku": "MUG-001", "name": "Blue mug", "price_cents": 1200}, {"sku": "X"}]'
    assert parse_rows(text, COLUMNS) == [
        {"sku": "MUG-001", "name": "Blue mug", "price_cents": 1200},
        {"sku": "X"},
    ]


def test_a_single_json_object_is_one_row() -> None:
    assert parse_rows('  {"sku": "MUG-001"}  ', COLUMNS) == [{"sku": "MUG-001"}]


def test_broken_json_is_an_error_on_the_text_field() -> None:
    with pytest.raises(ValidationFailed) as info:
        parse_rows('[{"sku": "MUG-001",', COLUMNS)
    assert info.value.errors is not None
    [error] = info.value.errors
    assert error.path == "$.csv"
    assert error.message.startswith("Not valid JSON: ")


def test_parsed_rows_convert_to_an_import() -> None:
    text = "sku,name,price_cents,initial_stock\nMUG-001,Blue mug,1200,40\nTEA-002,Green tea,350"
    command = DECODER.convert(
        {"type": "ImportCatalog", "products": parse_rows(text, COLUMNS)}, strict=False
    )
    assert command == ImportCatalog(
        [ProductRow("MUG-001", "Blue mug", 1200, 40), ProductRow("TEA-002", "Green tea", 350, 0)]
    )


def test_bad_rows_are_reported_by_row() -> None:
    text = "MUG-001,Blue mug,0\nTEA-002,Green tea,350,1,oops\nmug,Mug,12"
    document = {"type": "ImportCatalog", "products": parse_rows(text, COLUMNS)}
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
    assert parse_rows("SKU,Widget,100\nMUG-001,Blue mug,1200,40", COLUMNS) == [
        {"sku": "SKU", "name": "Widget", "price_cents": "100"},
        MUG,
    ]


# --- with_errors -----------------------------------------------------------------------------


def test_field_errors_go_beside_their_fields() -> None:
    state = with_errors(
        FormState(FORMS["CreateProduct"]),
        [
            FieldError("$.sku", "Bad sku"),
            FieldError("$.name", "Too long"),
            FieldError("$.sku", "Second message"),
            FieldError("$.type", "Unknown command"),
        ],
    )
    assert state.errors == {"sku": "Bad sku", "name": "Too long"}
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


# --- forms from the commands' schemas ---------------------------------------------------------


def fields_of(command: str) -> list[str]:
    spec = REGISTRY.spec(command)
    return [f.encode_name for f in msgspec.structs.fields(spec.wire_type or spec.command_type)]


@pytest.mark.parametrize("command", ADMIN_COMMANDS)
def test_every_public_admin_command_has_a_form_or_a_page_that_offers_it(command: str) -> None:
    offered_elsewhere = command in ORDER_ACTIONS or command in console.ACTIONS
    assert (command in FORMS) != offered_elsewhere


def test_only_commands_an_admin_may_send_have_a_form() -> None:
    assert set(FORMS) <= set(ADMIN_COMMANDS)


@pytest.mark.parametrize("command", sorted(FORMS))
def test_a_form_has_its_commands_fields_in_order(command: str) -> None:
    spec = FORMS[command]
    if spec.rows is None:
        assert [f.name for f in spec.fields] == fields_of(command)
    else:
        assert [spec.rows.field] == fields_of(command)
        assert [f.name for f in spec.fields] == [ROWS_TEXT, ROWS_FILE]


def test_an_import_is_rows_of_the_product_rows_fields() -> None:
    rows = FORMS["ImportCatalog"].rows
    assert rows is not None
    assert rows.columns == tuple(f.name for f in msgspec.structs.fields(ProductRow)) == COLUMNS
    text, _file = FORMS["ImportCatalog"].fields
    assert text.label == "Rows: sku,name,price_cents,initial_stock (CSV) or a JSON list"
    assert text.placeholder == "MUG-001,Blue mug,1200,40"  # each column's example
    assert text.hint == "1 to 10,000 rows"


def test_labels_hints_and_examples_come_from_the_field_declarations() -> None:
    sku, name, price, stock = FORMS["CreateProduct"].fields
    assert (sku.label, sku.kind, sku.placeholder) == ("SKU", "text", "MUG-001")
    assert sku.hint == "3 to 32 capital letters, digits or dashes"  # the pattern, described
    assert (name.label, name.required) == ("Name", True)
    assert (price.label, price.kind, price.hint) == ("Price ($)", "money", "$0.01 to $100,000.00")
    assert price.placeholder == "12.00"  # the example, 1200 cents, in dollars
    assert (stock.required, stock.hint) == (False, "0 to 1,000,000 (empty: 0)")
    assert FORMS["RenameProduct"].fields[1].label == "New name"  # a field's own title wins


def test_the_button_names_the_action_without_the_aggregate() -> None:
    restock = FORMS["RestockProduct"]
    assert (restock.title, restock.button) == ("Restock product", "Restock")
    assert FORMS["ChangePrice"].button == "Change price"


@pytest.mark.parametrize("command", sorted(FORMS))
def test_every_form_renders_an_input_for_each_of_its_fields(command: str) -> None:
    spec = FORMS[command]
    html = RENDER.fragment("command_form", f=FormState(spec))
    assert f'data-form="{command}"' in html
    assert f'action="/ui/commands/{command}"' in html
    for field in spec.fields:
        assert re.search(
            rf'<(input|textarea) id="{command}-{field.name}" name="{field.name}"', html
        )
    assert ('hx-encoding="multipart/form-data"' in html) == (spec.rows is not None)


def test_a_field_is_described_by_its_error_else_by_its_hint() -> None:
    state = with_errors(FormState(FORMS["CreateProduct"]), [FieldError("$.sku", "Bad sku")])
    html = RENDER.fragment("command_form", f=state)
    described = dict(
        re.findall(r'<input id="CreateProduct-(\w+)"[^>]* aria-describedby="([^"]+)"', html)
    )
    assert described["sku"] == "CreateProduct-sku-error"
    assert described["name"] == "CreateProduct-name-hint"
    assert 'id="CreateProduct-sku-hint"' in html  # the hint stays shown


# --- a command the forms have never seen ------------------------------------------------------


class FeatureThing(CommandStruct, frozen=True):
    sku: Sku
    featured: bool
    rank: Annotated[int, msgspec.Meta(ge=1, le=5, title="Rank")] = 3
    note: str | None = None
    pinned: bool = True


FEATURE: FormSpec = form_spec(FeatureThing, "thing")


def test_a_new_command_with_a_bool_gets_a_checkbox_with_no_change_to_the_forms() -> None:
    sku, featured, rank, note, pinned = FEATURE.fields
    assert (FEATURE.title, FEATURE.button) == ("Feature thing", "Feature")
    assert (sku.label, sku.kind) == ("SKU", "text")
    assert (featured.label, featured.kind, featured.initial) == ("Featured", "checkbox", "")
    assert (rank.label, rank.kind, rank.hint) == ("Rank", "number", "1 to 5 (empty: 3)")
    assert (note.kind, note.required, note.hint) == ("text", False, "(optional)")
    assert (pinned.kind, pinned.initial) == ("checkbox", CHECKED)  # its default: true
    html = RENDER.fragment("command_form", f=FormState(FEATURE))
    assert '<input id="FeatureThing-featured" name="featured" type="checkbox" value="true"' in html
    assert re.search(r'id="FeatureThing-pinned"[^>]* checked', html)
    assert not re.search(r'id="FeatureThing-featured"[^>]* checked', html)


@pytest.mark.parametrize(
    "posted, featured, pinned",
    [({}, False, False), ({"featured": "true"}, True, False), ({"pinned": "on"}, False, True)],
)
async def test_an_unchecked_checkbox_is_false(
    posted: dict[str, str], featured: bool, pinned: bool
) -> None:
    form = FormData([("sku", " MUG-001 "), ("rank", ""), *posted.items()])
    document, values = await document_from_form(FEATURE, form)
    assert document == {
        "type": "FeatureThing",
        "sku": "MUG-001",
        "featured": featured,
        "pinned": pinned,
    }
    assert values["featured"] == (CHECKED if featured else "")
    command = CommandDecoder([FeatureThing]).convert(document, strict=False)
    assert command == FeatureThing("MUG-001", featured, 3, None, pinned)


def test_a_field_with_no_form_input_is_refused_when_the_form_is_built() -> None:
    class Tagged(CommandStruct, frozen=True):
        tags: dict[str, str]

    with pytest.raises(TypeError, match=r"Tagged\.tags"):
        form_spec(Tagged)


# --- money in dollars, refusals at their field, what changed ------------------------------------


@pytest.mark.parametrize(
    ("typed", "cents"),
    [("12", 1200), ("12.5", 1250), ("12.99", 1299), ("$1,200.05", 120005), ("0.01", 1)],
)
async def test_a_price_is_typed_in_dollars_and_sent_in_exact_cents(typed: str, cents: int) -> None:
    form = FormData({"sku": "MUG-001", "price_cents": typed})
    document, values = await document_from_form(FORMS["ChangePrice"], form)
    assert document == {"type": "ChangePrice", "sku": "MUG-001", "price_cents": cents}
    assert values["price_cents"] == typed  # shown again as typed


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("12.345", "At most two digits after the point: dollars and cents"),
        ("abc", "Enter an amount in dollars, like 12.99"),
        ("0", "From $0.01 to $100,000.00"),
        ("100000.01", "From $0.01 to $100,000.00"),
    ],
)
async def test_a_price_that_is_not_an_amount_is_refused_at_its_field(
    typed: str, message: str
) -> None:
    spec = FORMS["CreateProduct"]
    form = FormData({"sku": "MUG-001", "name": "Blue mug", "price_cents": typed})
    document, values = await document_from_form(spec, form)
    with pytest.raises(ValidationFailed) as info:
        DECODER.convert(document, strict=False)
    state = with_errors(FormState(spec, values=values), info.value.errors or [])
    assert state.errors == {"price_cents": message}
    html = RENDER.fragment("command_form", f=state)
    assert f'data-error-for="price_cents">{message}</p>' in html
    assert f'value="{typed}"' in html


def test_a_duplicate_sku_is_told_at_the_sku_field() -> None:
    taken = problem("sku_exists", 409, "MUG-001 already exists")
    state = with_problem(FormState(FORMS["CreateProduct"]), taken)
    assert state.errors == {"sku": "MUG-001 already exists"}
    html = RENDER.fragment("command_form", f=state)
    assert 'data-error-for="sku">MUG-001 already exists</p>' in html
    assert 'role="alert"' not in html  # not a second time at the bottom


def test_a_refusal_about_no_field_of_the_form_stays_a_message() -> None:
    state = with_problem(FormState(FORMS["CreateProduct"]), problem("forbidden", 403, "Admins"))
    assert state.errors == {}
    assert 'data-error-code="forbidden"' in RENDER.fragment("command_form", f=state)


@pytest.mark.parametrize(
    ("command", "document", "text"),
    [
        (
            "CreateProduct",
            {"sku": "BOOK-1", "name": "Title", "price_cents": 1250, "initial_stock": "4"},
            "Created BOOK-1 'Title' (price $12.50, initial stock 4)",
        ),
        ("RenameProduct", {"sku": "BOOK-1", "name": "New"}, "Renamed BOOK-1 'New'"),
        (
            "ChangePrice",
            {"sku": "BOOK-1", "price_cents": 999},
            "Changed price of BOOK-1 (new price $9.99)",
        ),
        ("RestockProduct", {"sku": "BOOK-1", "quantity": "5"}, "Restocked BOOK-1 (quantity 5)"),
        ("DiscontinueProduct", {"sku": "BOOK-1"}, "Discontinued BOOK-1"),
    ],
)
def test_success_names_what_changed(command: str, document: dict[str, Any], text: str) -> None:
    assert summary(FORMS[command], {"type": command, **document}) == text


@pytest.mark.parametrize(
    ("path", "place"),
    [
        ("$.products[0]", "Row 1"),
        ("$.products[11].price_cents", "Row 12, price_cents"),
        ("$.sku", "sku"),
        ("$.products", "products"),
    ],
)
def test_row_errors_are_numbered_from_one(path: str, place: str) -> None:
    assert error_place(path) == place
