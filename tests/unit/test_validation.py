"""Structural validation of every public command, through the real registry's decoder."""

from __future__ import annotations

import copy
from typing import Any

import msgspec
import pytest

from app.domain import orders, products
from app.domain.catalog_import import ImportCatalog, ProductRow
from app.kernel.dead_letter_commands import (
    DiscardDeadLetter,
    DiscardDeadLetters,
    RetryAllDeadLetters,
    RetryDeadLetter,
    RetryDeadLetters,
)
from app.kernel.errors import ValidationFailed
from app.kernel.messages import CommandEnvelope, FieldError, Outcome
from app.kernel.pause_commands import PauseConsumer, ResumeConsumer
from app.kernel.validation import MAX_ERRORS, CommandDecoder, MalformedJson, collect_errors
from app.wiring import build_registry
from tests.support.examples import example_document


async def fake_tokenize(card_number: str) -> str:
    """Stands in for the payment gateway: never called by decoding."""
    raise AssertionError("decoding must not tokenize")


async def fake_runner(envelope: CommandEnvelope, bus: Any) -> Outcome:
    raise AssertionError("decoding must not run anything")


REGISTRY = build_registry(fake_tokenize, fake_runner, {}, fake_runner)
DECODER: CommandDecoder = REGISTRY.public_decoder
WIRE_TYPES = {
    spec.name: spec.wire_type or spec.command_type for spec in REGISTRY.specs if spec.public
}
"""Every public command, as clients send it."""
ORDER_ID = "o" + "0123456789abcdef0123456789ab"
CARD = "4242424242424242"
VALID: dict[str, dict[str, Any]] = {
    "CreateProduct": {"sku": "MUG-001", "name": "Blue mug", "price_cents": 1200},
    "RenameProduct": {"sku": "MUG-001", "name": "Red mug"},
    "ChangePrice": {"sku": "MUG-001", "price_cents": 999},
    "RestockProduct": {"sku": "MUG-001", "quantity": 5},
    "DiscontinueProduct": {"sku": "MUG-001"},
    "ImportCatalog": {"products": [{"sku": "MUG-001", "name": "Blue mug", "price_cents": 1200}]},
    "PlaceOrder": {"lines": [{"sku": "MUG-001", "quantity": 2}], "card_number": CARD},
    "CancelOrder": {"order_id": ORDER_ID, "reason": "changed my mind"},
    "ShipOrder": {"order_id": ORDER_ID},
    "RetryDeadLetter": {"consumer": "catalog", "letter_id": "1700000000000-0"},
    "DiscardDeadLetter": {
        "consumer": "catalog",
        "letter_id": "1700000000000-0",
        "reason": "bad data",
    },
    "RetryAllDeadLetters": {"consumer": "fulfilment"},
    "RetryDeadLetters": {"consumer": "catalog", "entry_type": "ProductRenamed"},
    "DiscardDeadLetters": {"consumer": "catalog", "reason": "bad data", "error": "DecodeError"},
    "PauseConsumer": {"consumer": "catalog", "reason": "looking at a poison event"},
    "ResumeConsumer": {"consumer": "catalog"},
}
EXPECTED: dict[str, msgspec.Struct] = {
    "CreateProduct": products.CreateProduct("MUG-001", "Blue mug", 1200, 0),
    "RenameProduct": products.RenameProduct("MUG-001", "Red mug"),
    "ChangePrice": products.ChangePrice("MUG-001", 999),
    "RestockProduct": products.RestockProduct("MUG-001", 5),
    "DiscontinueProduct": products.DiscontinueProduct("MUG-001"),
    "ImportCatalog": ImportCatalog([ProductRow("MUG-001", "Blue mug", 1200, 0)]),
    "PlaceOrder": orders.PlaceOrderRequest([orders.LineRequest("MUG-001", 2)], CARD),
    "CancelOrder": orders.CancelOrder(ORDER_ID, "changed my mind"),
    "ShipOrder": orders.ShipOrder(ORDER_ID),
    "RetryDeadLetter": RetryDeadLetter("catalog", "1700000000000-0"),
    "DiscardDeadLetter": DiscardDeadLetter("catalog", "1700000000000-0", "bad data"),
    "RetryAllDeadLetters": RetryAllDeadLetters("fulfilment"),
    "RetryDeadLetters": RetryDeadLetters("catalog", entry_type="ProductRenamed"),
    "DiscardDeadLetters": DiscardDeadLetters("catalog", "bad data", error="DecodeError"),
    "PauseConsumer": PauseConsumer("catalog", "looking at a poison event"),
    "ResumeConsumer": ResumeConsumer("catalog"),
}
INTERNAL = {spec.name: spec.command_type for spec in REGISTRY.specs if not spec.public}
"""Every internal command: the bus sends them, clients may not."""


class Mentions:
    """Any message that mentions every fragment: a bound's limit, whatever the wording.

    Paths and our own messages ("Required", "Unknown field", ...) are checked exactly; the
    words describing a type or a bound are msgspec's or the kernel's plain ones.
    """

    def __init__(self, *fragments: str) -> None:
        self.fragments = fragments

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and other != "" and all(f in other for f in self.fragments)

    def __repr__(self) -> str:
        return f"Mentions{self.fragments!r}"


ANY = Mentions()
SKU_MESSAGE = Mentions("3", "32")


def document(command: str, **fields: Any) -> dict[str, Any]:
    """A valid document of `command`, with `fields` replaced."""
    return {"type": command, **copy.deepcopy(VALID[command]), **fields}


def encode(doc: Any) -> bytes:
    return msgspec.json.encode(doc)


def failure(raw: bytes, code: str = "validation_failed") -> list[tuple[str, object]]:
    """Decode `raw` expecting a ValidationFailed with `code`: its (path, message) pairs."""
    with pytest.raises(ValidationFailed) as info:
        DECODER.decode_json(raw)
    assert info.value.code == code
    assert info.value.status == 422
    assert info.value.errors is not None
    return pairs(info.value.errors)


def pairs(errors: list[FieldError]) -> list[tuple[str, object]]:
    return [(e.path, e.message) for e in errors]


def paths(raw: bytes) -> list[str]:
    return [path for path, _ in failure(raw)]


# --- the happy path --------------------------------------------------------------------------


def test_the_public_decoder_knows_exactly_the_public_commands() -> None:
    assert DECODER.tags == sorted(WIRE_TYPES) == REGISTRY.public_names
    assert set(VALID) <= set(WIRE_TYPES)


@pytest.mark.parametrize("command", sorted(WIRE_TYPES))
def test_a_document_made_from_the_schema_decodes(command: str) -> None:
    """Each field's declared example (else a value its rules allow): a valid command."""
    raw = encode({"type": command, **example_document(WIRE_TYPES[command])})
    assert isinstance(DECODER.decode_json(raw), WIRE_TYPES[command])


@pytest.mark.parametrize("command", sorted(VALID))
def test_a_valid_document_decodes_to_its_command(command: str) -> None:
    assert DECODER.decode_json(encode(document(command))) == EXPECTED[command]


@pytest.mark.parametrize("command", sorted(VALID))
def test_a_valid_form_converts_to_the_same_command(command: str) -> None:
    assert DECODER.convert(document(command), strict=False) == EXPECTED[command]


def test_defaults_fill_optional_fields() -> None:
    created = DECODER.decode_json(encode(document("CreateProduct")))
    assert isinstance(created, products.CreateProduct)
    assert created.initial_stock == 0
    doc = document("CancelOrder")
    del doc["reason"]
    cancelled = DECODER.decode_json(encode(doc))
    assert cancelled == orders.CancelOrder(ORDER_ID, "")


# --- unknown commands, non-objects, malformed JSON -------------------------------------------


@pytest.mark.parametrize("command", sorted(INTERNAL))
def test_internal_commands_are_not_public(command: str) -> None:
    raw = encode({"type": command, **example_document(INTERNAL[command])})
    assert failure(raw, "unknown_command") == [("$.type", f"Unknown command {command!r}")]


@pytest.mark.parametrize(
    "doc, message",
    [
        ({"sku": "MUG-001"}, "Required"),
        ({"type": "createproduct"}, "Unknown command 'createproduct'"),
        ({"type": ""}, "Unknown command ''"),
        ({"type": 1}, "Unknown command 1"),
        ({"type": None}, "Required"),
        ({"type": ["CreateProduct"]}, "Unknown command ['CreateProduct']"),
    ],
)
def test_an_unknown_or_missing_type_is_unknown_command(doc: dict[str, Any], message: str) -> None:
    assert failure(encode(doc), "unknown_command") == [("$.type", message)]


@pytest.mark.parametrize("raw", [b"[]", b'[{"type": "ShipOrder"}]', b'"x"', b"1", b"null", b"true"])
def test_a_document_that_is_not_an_object_fails_at_the_root(raw: bytes) -> None:
    assert failure(raw) == [("$", "Expected a JSON object")]


@pytest.mark.parametrize(
    "raw", [b"", b"{", b"{'type': 'ShipOrder'}", b'{"type": "ShipOrder",}', b"\xff\xfe", b"nul"]
)
def test_malformed_json_is_its_own_error(raw: bytes) -> None:
    with pytest.raises(MalformedJson) as info:
        DECODER.decode_json(raw)
    assert (info.value.code, info.value.status) == ("malformed_json", 400)
    assert info.value.to_problem().code == "malformed_json"


def test_malformed_json_does_not_echo_the_body() -> None:
    with pytest.raises(MalformedJson) as info:
        DECODER.decode_json(b'{"type": "PlaceOrder", "card_number": "' + CARD.encode() + b'"')
    assert CARD not in str(info.value)
    assert CARD not in info.value.detail


def test_a_non_object_form_fails_at_the_root() -> None:
    with pytest.raises(ValidationFailed) as info:
        DECODER.convert(["CreateProduct"], strict=False)
    assert info.value.errors == [FieldError("$", "Expected a JSON object")]


# --- every error at once, with its path ------------------------------------------------------


def test_every_field_error_is_reported_with_its_path() -> None:
    raw = encode(
        {
            "type": "CreateProduct",
            "sku": "ab",
            "name": "",
            "price_cents": 0,
            "initial_stock": -1,
            "colour": "blue",
        }
    )
    assert failure(raw) == [
        ("$.colour", "Unknown field"),
        ("$.sku", SKU_MESSAGE),
        ("$.name", ANY),
        ("$.price_cents", Mentions("1")),
        ("$.initial_stock", Mentions("0")),
    ]


@pytest.mark.parametrize("command", sorted(WIRE_TYPES))
def test_missing_fields_are_each_required(command: str) -> None:
    fields = msgspec.structs.fields(WIRE_TYPES[command])
    expected = [(f"$.{f.encode_name}", "Required") for f in fields if f.required]
    assert failure(encode({"type": command})) == expected


@pytest.mark.parametrize("command", sorted(WIRE_TYPES))
def test_unknown_fields_are_refused(command: str) -> None:
    doc = {"type": command, **example_document(WIRE_TYPES[command]), "extra": 1}
    assert failure(encode(doc)) == [("$.extra", "Unknown field")]


@pytest.mark.parametrize(
    "command, container",
    [("ImportCatalog", "products"), ("PlaceOrder", "lines")],
)
def test_unknown_fields_in_rows_are_refused(command: str, container: str) -> None:
    doc = document(command)
    doc[container][0]["colour"] = "blue"
    assert failure(encode(doc)) == [(f"$.{container}[0].colour", "Unknown field")]


def test_a_client_cannot_send_an_already_tokenized_order() -> None:
    doc = {
        "type": "PlaceOrder",
        "lines": [{"sku": "MUG-001", "quantity": 1}],
        "card_last4": "4242",
        "card_token": "tok_forged",
    }
    assert failure(encode(doc)) == [
        ("$.card_last4", "Unknown field"),
        ("$.card_token", "Unknown field"),
        ("$.card_number", "Required"),
    ]


def test_errors_in_several_rows_are_reported_by_row() -> None:
    rows: list[dict[str, Any]] = [
        {"sku": f"SKU-{i}", "name": "n", "price_cents": 100} for i in range(5)
    ]
    rows[1]["name"] = ""
    rows[3]["price_cents"] = 0
    rows[4] = {"sku": "bad"}
    assert failure(encode({"type": "ImportCatalog", "products": rows})) == [
        ("$.products[1].name", ANY),
        ("$.products[3].price_cents", Mentions("1")),
        ("$.products[4].sku", SKU_MESSAGE),
        ("$.products[4].name", "Required"),
        ("$.products[4].price_cents", "Required"),
    ]


def test_a_row_that_is_not_an_object_is_reported_at_its_index() -> None:
    doc = {"type": "ImportCatalog", "products": [VALID["ImportCatalog"]["products"][0], "x"]}
    assert failure(encode(doc)) == [("$.products[1]", ANY)]


def test_a_field_of_the_wrong_shape_is_reported() -> None:
    assert failure(encode({"type": "ImportCatalog", "products": "x"})) == [("$.products", ANY)]
    assert failure(encode(document("PlaceOrder", lines={"sku": "MUG-001"}))) == [("$.lines", ANY)]


def test_errors_are_capped() -> None:
    rows = [{"sku": "x", "name": "", "price_cents": 0} for _ in range(40)]
    errors = failure(encode({"type": "ImportCatalog", "products": rows}))
    assert len(errors) == MAX_ERRORS
    assert errors[:3] == [
        ("$.products[0].sku", SKU_MESSAGE),
        ("$.products[0].name", ANY),
        ("$.products[0].price_cents", Mentions("1")),
    ]


def test_the_error_detail_lists_every_path() -> None:
    with pytest.raises(ValidationFailed) as info:
        DECODER.decode_json(encode({"type": "RestockProduct"}))
    assert info.value.detail == "$.sku: Required; $.quantity: Required"


@pytest.mark.parametrize("value", [12.0, 12.5, True, "12", None, [12]])
def test_json_numbers_must_be_integers(value: Any) -> None:
    [(path, message)] = failure(encode(document("ChangePrice", price_cents=value)))
    assert path == "$.price_cents"
    assert message == ANY


# --- field bounds: at the edges --------------------------------------------------------------

SKU_CASES: list[tuple[Any, bool]] = [
    ("ABC", True),
    ("A" * 32, True),
    ("A-1", True),
    ("---", True),
    ("0123456789-ABCDEFGHIJKLMNOPQRSTU", True),
    ("AB", False),
    ("A" * 33, False),
    ("", False),
    ("abc", False),
    ("Abc", False),
    ("AB_C", False),
    ("AB.C", False),
    ("AB C", False),
    (" ABC", False),
    ("ABC ", False),
    ("ÄBC", False),
]
SKU_PLACES = [
    ("CreateProduct", ("sku",)),
    ("RenameProduct", ("sku",)),
    ("ChangePrice", ("sku",)),
    ("RestockProduct", ("sku",)),
    ("DiscontinueProduct", ("sku",)),
    ("ImportCatalog", ("products", 0, "sku")),
    ("PlaceOrder", ("lines", 0, "sku")),
]
NAME_CASES: list[tuple[Any, bool]] = [
    ("x", True),
    ("x" * 120, True),
    ("é" * 120, True),
    ("☕" * 120, True),
    ("", False),
    ("x" * 121, False),
    ("é" * 121, False),
]
NAME_PLACES = [
    ("CreateProduct", ("name",)),
    ("RenameProduct", ("name",)),
    ("ImportCatalog", ("products", 0, "name")),
]
PRICE_CASES: list[tuple[Any, bool]] = [
    (1, True),
    (10_000_000, True),
    (0, False),
    (-1, False),
    (10_000_001, False),
]
PRICE_PLACES = [
    ("CreateProduct", ("price_cents",)),
    ("ChangePrice", ("price_cents",)),
    ("ImportCatalog", ("products", 0, "price_cents")),
]
STOCK_CASES: list[tuple[Any, bool]] = [
    (0, True),
    (1_000_000, True),
    (-1, False),
    (1_000_001, False),
]
STOCK_PLACES = [
    ("CreateProduct", ("initial_stock",)),
    ("ImportCatalog", ("products", 0, "initial_stock")),
]
RESTOCK_CASES: list[tuple[Any, bool]] = [
    (1, True),
    (1_000_000, True),
    (0, False),
    (-5, False),
    (1_000_001, False),
]
LINE_QUANTITY_CASES: list[tuple[Any, bool]] = [(1, True), (100, True), (0, False), (101, False)]
CARD_CASES: list[tuple[Any, bool]] = [
    ("4222222222222", True),  # 13 digits
    ("4242424242424242428", True),  # 19 digits
    ("4000000000000002", True),
    ("424242424242", False),  # 12 digits, Luhn-valid
    ("42424242424242424242", False),  # 20 digits, Luhn-valid
    ("4242 4242 4242 4242", False),
    ("4242-4242-4242-4242", False),
    ("", False),
]
REASON_CASES: list[tuple[Any, bool]] = [("", True), ("x" * 200, True), ("x" * 201, False)]
ORDER_ID_CASES: list[tuple[Any, bool]] = [
    ("o" + "a" * 28, True),
    (ORDER_ID, True),
    ("o" + "a" * 27, False),
    ("o" + "a" * 29, False),
    ("O" + "a" * 28, False),
    ("o" + "A" * 28, False),
    ("o" + "g" * 28, False),
    ("x" + "a" * 28, False),
    ("", False),
]
ORDER_ID_PLACES = [("CancelOrder", ("order_id",)), ("ShipOrder", ("order_id",))]


def _cases(places: list[tuple[str, tuple[Any, ...]]], values: list[tuple[Any, bool]]) -> list[Any]:
    return [
        pytest.param(command, where, value, ok, id=f"{command}-{where[-1]}-{value!r:.20}-{ok}")
        for command, where in places
        for value, ok in values
    ]


BOUNDS = [
    *_cases(SKU_PLACES, SKU_CASES),
    *_cases(NAME_PLACES, NAME_CASES),
    *_cases(PRICE_PLACES, PRICE_CASES),
    *_cases(STOCK_PLACES, STOCK_CASES),
    *_cases([("RestockProduct", ("quantity",))], RESTOCK_CASES),
    *_cases([("PlaceOrder", ("lines", 0, "quantity"))], LINE_QUANTITY_CASES),
    *_cases([("PlaceOrder", ("card_number",))], CARD_CASES),
    *_cases([("CancelOrder", ("reason",))], REASON_CASES),
    *_cases(ORDER_ID_PLACES, ORDER_ID_CASES),
]


def _with(command: str, where: tuple[Any, ...], value: Any) -> dict[str, Any]:
    doc = document(command)
    target: Any = doc
    for step in where[:-1]:
        target = target[step]
    target[where[-1]] = value
    return doc


def _path(where: tuple[Any, ...]) -> str:
    return "$" + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in where)


def _read(command: msgspec.Struct, where: tuple[Any, ...]) -> Any:
    value: Any = command
    for step in where:
        value = value[step] if isinstance(step, int) else getattr(value, step)
    return value


@pytest.mark.parametrize("command, where, value, ok", BOUNDS)
def test_field_bounds(command: str, where: tuple[Any, ...], value: Any, ok: bool) -> None:
    raw = encode(_with(command, where, value))
    if ok:
        assert _read(DECODER.decode_json(raw), where) == value
    else:
        assert paths(raw) == [_path(where)]


@pytest.mark.parametrize("command, where, value, ok", BOUNDS)
def test_field_bounds_hold_for_forms_too(
    command: str, where: tuple[Any, ...], value: Any, ok: bool
) -> None:
    doc = _with(command, where, str(value) if isinstance(value, int) else value)
    if ok:
        assert str(_read(DECODER.convert(doc, strict=False), where)) == str(value)
    else:
        with pytest.raises(ValidationFailed) as info:
            DECODER.convert(doc, strict=False)
        assert info.value.errors is not None
        assert [e.path for e in info.value.errors] == [_path(where)]


@pytest.mark.parametrize(
    "command, where, value",
    [
        ("CreateProduct", ("sku",), 123),
        ("RenameProduct", ("name",), 5),
        ("PlaceOrder", ("card_number",), 4242424242424242),
        ("CancelOrder", ("reason",), None),
        ("ShipOrder", ("order_id",), 1),
        ("PlaceOrder", ("lines", 0, "sku"), ["MUG-001"]),
    ],
)
def test_strings_must_be_json_strings(command: str, where: tuple[Any, ...], value: Any) -> None:
    [(path, message)] = failure(encode(_with(command, where, value)))
    assert path == _path(where)
    assert message == ANY


def test_the_bound_messages_name_the_limit() -> None:
    assert failure(encode(document("ChangePrice", price_cents=10_000_001))) == [
        ("$.price_cents", Mentions("10000000"))
    ]
    assert failure(encode(document("RenameProduct", name="x" * 121))) == [
        ("$.name", Mentions("120"))
    ]
    assert failure(encode(document("CancelOrder", reason="x" * 201))) == [
        ("$.reason", Mentions("200"))
    ]


def test_a_luhn_failure_is_reported_on_the_card() -> None:
    raw = encode(document("PlaceOrder", card_number="4242424242424241"))
    assert failure(raw) == [("$.card_number", "Not a valid card number")]


def test_a_rejected_card_number_is_not_echoed() -> None:
    for card in ("4242424242424241", "42424242424242424242"):
        with pytest.raises(ValidationFailed) as info:
            DECODER.decode_json(encode(document("PlaceOrder", card_number=card)))
        assert card not in str(info.value)
        assert card not in msgspec.json.encode(info.value.to_problem()).decode()


def test_repeated_skus_and_a_bad_card_are_reported_together() -> None:
    lines = [{"sku": "AAA", "quantity": 1}, {"sku": "BBB", "quantity": 1}]
    lines.append({"sku": "AAA", "quantity": 2})
    raw = encode(document("PlaceOrder", lines=lines, card_number="4242424242424241"))
    assert failure(raw) == [
        ("$.lines[2].sku", "Each sku may appear only once"),
        ("$.card_number", "Not a valid card number"),
    ]


def test_repeated_skus_are_refused_from_forms_too() -> None:
    lines = [{"sku": "AAA", "quantity": "1"}, {"sku": "AAA", "quantity": "2"}]
    with pytest.raises(ValidationFailed) as info:
        DECODER.convert(document("PlaceOrder", lines=lines), strict=False)
    assert info.value.errors == [FieldError("$.lines[1].sku", "Each sku may appear only once")]


# --- list lengths ----------------------------------------------------------------------------


def _lines(count: int) -> list[dict[str, Any]]:
    return [{"sku": f"SKU-{i:03d}", "quantity": 1} for i in range(count)]


def _rows(count: int) -> list[dict[str, Any]]:
    return [{"sku": f"SKU-{i:05d}", "name": f"n{i}", "price_cents": 1} for i in range(count)]


@pytest.mark.parametrize("count", [1, 20])
def test_an_order_has_1_to_20_lines(count: int) -> None:
    command = DECODER.decode_json(encode(document("PlaceOrder", lines=_lines(count))))
    assert isinstance(command, orders.PlaceOrderRequest)
    assert len(command.lines) == count


@pytest.mark.parametrize(
    "count, message",
    [(0, Mentions("1")), (21, Mentions("20"))],
)
def test_an_order_outside_1_to_20_lines_is_refused(count: int, message: Mentions) -> None:
    assert failure(encode(document("PlaceOrder", lines=_lines(count)))) == [("$.lines", message)]


@pytest.mark.parametrize("count", [1, 10_000])
def test_an_import_has_1_to_10000_rows(count: int) -> None:
    command = DECODER.decode_json(encode({"type": "ImportCatalog", "products": _rows(count)}))
    assert isinstance(command, ImportCatalog)
    assert len(command.products) == count
    assert command.products[-1] == ProductRow(f"SKU-{count - 1:05d}", f"n{count - 1}", 1, 0)


def test_an_empty_import_is_refused() -> None:
    raw = encode({"type": "ImportCatalog", "products": []})
    assert failure(raw) == [("$.products", Mentions("1"))]


def test_an_import_over_10000_rows_is_refused_with_its_bad_rows() -> None:
    """The length error, and the rows' own errors beside it."""
    rows = _rows(10_001)
    rows[7]["price_cents"] = 0
    assert failure(encode({"type": "ImportCatalog", "products": rows})) == [
        ("$.products", Mentions("10000")),
        ("$.products[7].price_cents", Mentions("1")),
    ]


# --- forms: strings are converted when strict=False ------------------------------------------


def test_form_strings_become_integers() -> None:
    doc = {
        "type": "CreateProduct",
        "sku": "MUG-001",
        "name": "Blue mug",
        "price_cents": "12",
        "initial_stock": "3",
    }
    assert DECODER.convert(doc, strict=False) == products.CreateProduct(
        "MUG-001", "Blue mug", 12, 3
    )


def test_form_strings_in_rows_become_integers() -> None:
    rows = [{"sku": "MUG-001", "name": "Blue mug", "price_cents": "1200", "initial_stock": "40"}]
    command = DECODER.convert({"type": "ImportCatalog", "products": rows}, strict=False)
    assert command == ImportCatalog([ProductRow("MUG-001", "Blue mug", 1200, 40)])
    lines = [{"sku": "MUG-001", "quantity": "2"}]
    order = DECODER.convert(document("PlaceOrder", lines=lines), strict=False)
    assert order == orders.PlaceOrderRequest([orders.LineRequest("MUG-001", 2)], CARD)


@pytest.mark.parametrize(
    "value, message",
    [
        ("12x", ANY),
        ("1.5", ANY),
        ("", ANY),
        ("0", Mentions("1")),
        ("10000001", Mentions("10000000")),
    ],
)
def test_form_strings_that_are_not_valid_integers_are_refused(
    value: str, message: Mentions
) -> None:
    with pytest.raises(ValidationFailed) as info:
        DECODER.convert(document("ChangePrice", price_cents=value), strict=False)
    assert info.value.errors is not None
    assert pairs(info.value.errors) == [("$.price_cents", message)]


def test_strict_conversion_keeps_strings_as_strings() -> None:
    with pytest.raises(ValidationFailed) as info:
        DECODER.convert(document("ChangePrice", price_cents="12"), strict=True)
    assert info.value.errors is not None
    assert pairs(info.value.errors) == [("$.price_cents", ANY)]


# --- the decoder as a kernel piece -----------------------------------------------------------


class Ping(msgspec.Struct, tag_field="type", forbid_unknown_fields=True, frozen=True):
    count: int


def test_a_decoder_of_any_union_reports_paths() -> None:
    decoder = CommandDecoder([Ping])
    assert decoder.tags == ["Ping"]
    assert decoder.decode_json(b'{"type": "Ping", "count": 3}') == Ping(3)
    with pytest.raises(ValidationFailed) as info:
        decoder.decode_json(b'{"type": "Ping", "count": "3"}')
    assert info.value.errors is not None
    assert pairs(info.value.errors) == [("$.count", ANY)]


def test_collect_errors_walks_nested_values() -> None:
    errors = collect_errors({"products": [{"sku": "A"}], "x": 1}, ImportCatalog)
    assert [(e.path, e.message) for e in errors] == [
        ("$.x", "Unknown field"),
        ("$.products[0].sku", SKU_MESSAGE),
        ("$.products[0].name", "Required"),
        ("$.products[0].price_cents", "Required"),
    ]


# --- look-alikes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command, where, value",
    [
        ("CreateProduct", ("sku",), "MUG-001\n"),
        ("PlaceOrder", ("lines", 0, "sku"), "MUG-001\n"),
        ("ShipOrder", ("order_id",), ORDER_ID + "\n"),
        ("CancelOrder", ("order_id",), ORDER_ID + "\n"),
        ("PlaceOrder", ("card_number",), "4242424242424244\n"),  # Luhn-valid with the newline
    ],
    ids=["sku", "line-sku", "ship-order-id", "cancel-order-id", "card"],
)
def test_a_trailing_newline_is_refused(command: str, where: tuple[Any, ...], value: str) -> None:
    assert paths(encode(_with(command, where, value))) == [_path(where)]


# --- hostile documents ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 5000 + b"]" * 5000,
        b'{"a":' * 5000 + b"1" + b"}" * 5000,
        b'{"type": "CreateProduct", "name": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"type": "ImportCatalog", "products": [' + b"[" * 5000 + b"]" * 5000 + b"]}",
    ],
    ids=["list", "object", "in-a-field", "in-a-row"],
)
def test_json_nested_thousands_deep_is_malformed_json(raw: bytes) -> None:
    """msgspec's RecursionError becomes a 400 (it was an uncaught 500)."""
    with pytest.raises(MalformedJson) as info:
        DECODER.decode_json(raw)
    assert "deep" in info.value.detail


@pytest.mark.parametrize(
    "value", ["9" * 5000, "²", "١٢", "\U0001d7d7", "+5", " 5", "5 ", "1_000", "0x10"]
)
def test_form_numbers_that_are_not_plain_ascii_integers_are_field_errors(value: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        DECODER.convert(document("ChangePrice", price_cents=value), strict=False)
    assert info.value.errors is not None
    assert [e.path for e in info.value.errors] == ["$.price_cents"]


HOSTILE_TEXT = [
    "Mug\x00",
    "Mug\x07",
    "Mug\tname",
    "Mug\nname",
    "Mug\r",
    "Mug\x1b[31m",
    "Mug\x7f",
    "Mug\x85",
    "Mug\x9f",
    "\u202egum",
    "a\u202ab",
    "a\u202db",
    "a\u2066b\u2069",
    "a\u2067b",
    "a\u2068b",
    "a\u200eb",
    "a\u200fb",
    "a\u061cb",
    "a\u2028b",
    "a\u2029b",
]
TEXT_FIELDS = [
    ("CreateProduct", ("name",)),
    ("RenameProduct", ("name",)),
    ("CancelOrder", ("reason",)),
    ("ImportCatalog", ("products", 0, "name")),
    ("DiscardDeadLetter", ("reason",)),
]


@pytest.mark.parametrize("command, where", TEXT_FIELDS)
@pytest.mark.parametrize("text", HOSTILE_TEXT)
def test_free_text_refuses_control_and_bidi_characters(
    command: str, where: tuple[Any, ...], text: str
) -> None:
    """Names and reasons are one line of plain text: a field error at the field's path."""
    errors = failure(encode(_with(command, where, text)))
    assert [path for path, _ in errors] == [_path(where)]
    (message,) = [message for _, message in errors]
    assert isinstance(message, str) and "regex" not in message and "control" in message
    with pytest.raises(ValidationFailed):
        DECODER.convert(_with(command, where, text), strict=False)


@pytest.mark.parametrize(
    "text", ["ספל כחול", "كوب أزرق", "Mug ☕ ≠ cup", "Tasse « bleue »", "杯子", "Ünïcödé"]
)
@pytest.mark.parametrize("command, where", TEXT_FIELDS)
def test_free_text_in_any_script_is_fine(command: str, where: tuple[Any, ...], text: str) -> None:
    decoded = DECODER.decode_json(encode(_with(command, where, text)))
    assert _read(decoded, where) == text
