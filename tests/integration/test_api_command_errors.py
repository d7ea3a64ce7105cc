"""API.md "Commands": every error POST /api/commands can answer, as a problem+json object."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from app.aggregates import ORDER, PRODUCT
from app.domain import products
from app.kernel.registry import CommandSpec
from tests.support.api_client import (
    DECLINED_CARD,
    GOOD_CARD,
    Storefront,
    assert_problem,
    create_product,
    error_paths,
    placed_order,
    running_storefront,
    send,
    unique_sku,
)
from tests.support.examples import REGISTRY, example_document

MIB = 1024 * 1024
UNKNOWN_ORDER = "o" + "0" * 28


@pytest.fixture(scope="module")
def storefront(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storefront]:
    with running_storefront(
        tmp_path_factory.mktemp("command-errors"), workers=("commands", "projector", "process")
    ) as made:
        yield made


def product(sku: str | None = None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "CreateProduct",
        "sku": sku or unique_sku(),
        "name": "A mug",
        "price_cents": 1200,
    }
    body.update(fields)
    return body


# --- transport-level errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b'{"type": "CreateProduct", "sku": ', b"not json at all", b"", b'{"type": "X"} trailing'],
)
async def test_a_body_that_is_not_json_is_400_malformed_json(
    admin: httpx.AsyncClient, raw: bytes
) -> None:
    """Broken JSON under a JSON content type: 400 malformed_json."""
    response = await admin.post(
        "/api/commands", content=raw, headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 400, "malformed_json")


async def test_a_valid_command_without_a_session_is_401_unauthenticated(
    storefront: Storefront,
) -> None:
    """No session cookie: 401 unauthenticated, for admin and customer commands alike."""
    async with storefront.client() as anon:
        assert_problem(await send(anon, product()), 401, "unauthenticated")
        order = {
            "type": "PlaceOrder",
            "lines": [{"sku": "MUG-BLUE", "quantity": 1}],
            "card_number": GOOD_CARD,
        }
        assert_problem(await send(anon, order), 401, "unauthenticated")


async def test_a_customer_sending_an_admin_command_is_403_forbidden(
    alice: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    """Role checks: a customer may not CreateProduct, an admin may not PlaceOrder (403)."""
    sku = unique_sku()
    assert_problem(await send(alice, product(sku)), 403, "forbidden")
    order = {
        "type": "PlaceOrder",
        "lines": [{"sku": "MUG-BLUE", "quantity": 1}],
        "card_number": GOOD_CARD,
    }
    assert_problem(await send(admin, order), 403, "forbidden")
    created = await send(admin, product(sku))
    assert created.status_code == 200, created.text  # the refused command created nothing


async def test_a_body_over_one_mib_with_content_length_is_413(admin: httpx.AsyncClient) -> None:
    """A declared Content-Length over 1 MiB: 413 payload_too_large."""
    body = b'{"type": "CreateProduct", "name": "' + b"x" * MIB + b'"}'
    response = await admin.post(
        "/api/commands", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.request.headers["content-length"] == str(len(body))
    assert_problem(response, 413, "payload_too_large")


async def test_a_chunked_body_over_one_mib_is_413(admin: httpx.AsyncClient) -> None:
    """No Content-Length (chunked transfer): the body is counted as it arrives; over 1 MiB → 413."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"type": "CreateProduct", "name": "'
        for _ in range(17):
            yield b"x" * 65536
        yield b'"}'

    response = await admin.post(
        "/api/commands", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_problem(response, 413, "payload_too_large")


async def test_a_body_of_almost_one_mib_is_not_refused_for_its_size(
    admin: httpx.AsyncClient,
) -> None:
    """The limit is 1 MiB: a large-but-allowed body reaches validation (422, not 413)."""
    filler = "x" * (MIB - 200)
    response = await send(admin, product(name=filler))
    body = assert_problem(response, 422, "validation_failed")
    assert error_paths(body) == ["$.name"]


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", None]
)
async def test_a_body_that_is_not_declared_json_is_415(
    storefront: Storefront, content_type: str | None
) -> None:
    """Content-Type other than application/json (or none): 415 unsupported_media_type."""
    headers = {"Content-Type": content_type} if content_type else {}
    async with storefront.client("admin") as admin:
        response = await admin.post(
            "/api/commands",
            content=b'{"type": "DiscontinueProduct", "sku": "MUG-RED"}',
            headers=headers,
        )
    assert_problem(response, 415, "unsupported_media_type")


async def test_a_json_media_type_with_a_charset_is_accepted(admin: httpx.AsyncClient) -> None:
    """`application/json; charset=utf-8` is JSON: the command runs (200)."""
    sku, _ = await create_product(admin)
    response = await admin.post(
        "/api/commands",
        content=f'{{"type": "DiscontinueProduct", "sku": "{sku}"}}'.encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200, response.text


async def test_unknown_api_routes_and_methods_are_problems(admin: httpx.AsyncClient) -> None:
    """Outside the routes, errors are still problem+json: 404 not_found, 405 method_not_allowed."""
    assert_problem(await admin.get("/api/no-such-thing"), 404, "not_found")
    assert_problem(await admin.get("/api/commands"), 405, "method_not_allowed")
    assert_problem(await admin.put("/api/commands", json={}), 405, "method_not_allowed")


# --- structural validation ------------------------------------------------------------------------

LINE_A = {"sku": "AAA-1", "quantity": 1}
LINE_B = {"sku": "BBB-2", "quantity": 2}
BAD_LUHN = "4242424242424241"

ADMIN_CASES = [
    pytest.param(product(price_cents=0), ["$.price_cents"], id="price-zero"),
    pytest.param(product(price_cents=10_000_001), ["$.price_cents"], id="price-too-high"),
    pytest.param(product(price_cents="12"), ["$.price_cents"], id="price-a-string"),
    pytest.param(product(sku="mug-1"), ["$.sku"], id="sku-lowercase"),
    pytest.param(product(name="x" * 121), ["$.name"], id="name-too-long"),
    pytest.param(product(initial_stock=1_000_001), ["$.initial_stock"], id="stock-too-high"),
    pytest.param(product(colour="blue"), ["$.colour"], id="unknown-field"),
    pytest.param(
        {"type": "CreateProduct", "sku": "ab", "name": "", "price_cents": 0, "initial_stock": -1},
        ["$.sku", "$.name", "$.price_cents", "$.initial_stock"],
        id="several-errors-at-once",
    ),
    pytest.param({"type": "CreateProduct"}, ["$.sku", "$.name", "$.price_cents"], id="missing"),
    pytest.param({"type": "RenameProduct", "sku": "MUG-RED"}, ["$.name"], id="rename-no-name"),
    pytest.param(
        {"type": "RestockProduct", "sku": "MUG-RED", "quantity": 0}, ["$.quantity"], id="restock-0"
    ),
    pytest.param(
        {
            "type": "ImportCatalog",
            "products": [
                {"sku": "IMP-1", "name": "One", "price_cents": 100},
                {"sku": "IMP-2", "name": "Two", "price_cents": 100},
                {"sku": "imp 3", "name": "Three", "price_cents": 100},
            ],
        },
        ["$.products[2].sku"],
        id="import-row-sku",
    ),
    pytest.param(
        {
            "type": "ImportCatalog",
            "products": [
                {"sku": "IMP-1", "name": "", "price_cents": 100},
                {"sku": "IMP-2", "name": "Two", "price_cents": 0},
            ],
        },
        ["$.products[0].name", "$.products[1].price_cents"],
        id="import-several-rows",
    ),
    pytest.param({"type": "ImportCatalog", "products": []}, ["$.products"], id="import-empty"),
    pytest.param(
        {"type": "CancelOrder", "order_id": UNKNOWN_ORDER, "reason": "r" * 201},
        ["$.reason"],
        id="cancel-reason-too-long",
    ),
    pytest.param({"type": "ShipOrder", "order_id": "42"}, ["$.order_id"], id="ship-bad-order-id"),
    pytest.param(["CreateProduct"], ["$"], id="not-an-object"),
]

CUSTOMER_CASES = [
    pytest.param(
        {
            "type": "PlaceOrder",
            "lines": [LINE_A, {**LINE_A, "quantity": 2}],
            "card_number": GOOD_CARD,
        },
        ["$.lines[1].sku"],
        id="duplicate-skus",
    ),
    pytest.param(
        {"type": "PlaceOrder", "lines": [LINE_A], "card_number": BAD_LUHN},
        ["$.card_number"],
        id="luhn-invalid",
    ),
    pytest.param(
        {"type": "PlaceOrder", "lines": [LINE_A], "card_number": "4242-4242-4242"},
        ["$.card_number"],
        id="card-not-digits",
    ),
    pytest.param(
        {"type": "PlaceOrder", "lines": [LINE_A, LINE_B, LINE_A], "card_number": BAD_LUHN},
        ["$.lines[2].sku", "$.card_number"],
        id="duplicate-and-luhn",
    ),
    pytest.param(
        {
            "type": "PlaceOrder",
            "lines": [LINE_A, {"sku": "BBB-2", "quantity": 101}],
            "card_number": GOOD_CARD,
        },
        ["$.lines[1].quantity"],
        id="quantity-over-100",
    ),
    pytest.param(
        {"type": "PlaceOrder", "lines": [], "card_number": GOOD_CARD}, ["$.lines"], id="no-lines"
    ),
    pytest.param(
        {
            "type": "PlaceOrder",
            "lines": [{"sku": f"SKU-{i:02d}", "quantity": 1} for i in range(21)],
            "card_number": GOOD_CARD,
        },
        ["$.lines"],
        id="21-lines",
    ),
]


def assert_validation(response: httpx.Response, paths: list[str]) -> None:
    body = assert_problem(response, 422, "validation_failed")
    assert error_paths(body) == paths, body
    assert all(error["message"] for error in body["errors"]), body


@pytest.mark.parametrize(("body", "paths"), ADMIN_CASES)
async def test_admin_command_validation_lists_every_error_path(
    admin: httpx.AsyncClient, body: Any, paths: list[str]
) -> None:
    """422 validation_failed with exactly the JSON paths of the fields in error."""
    assert_validation(await send(admin, body), paths)


@pytest.mark.parametrize(("body", "paths"), CUSTOMER_CASES)
async def test_place_order_validation_lists_every_error_path(
    alice: httpx.AsyncClient, body: dict[str, Any], paths: list[str]
) -> None:
    """PlaceOrder: distinct skus, Luhn-valid card, 1-20 lines of 1-100 units (422 with paths)."""
    assert_validation(await send(alice, body), paths)


@pytest.mark.parametrize(
    ("body", "message_part"),
    [
        pytest.param({"type": "DeleteEverything"}, "DeleteEverything", id="unknown-type"),
        pytest.param({"sku": "MUG-RED"}, "Required", id="no-type"),
        pytest.param(
            {"type": "ReserveStock", "sku": "MUG-RED", "order_id": UNKNOWN_ORDER, "quantity": 1},
            "ReserveStock",
            id="internal-command",
        ),
        pytest.param({"type": 7}, "7", id="type-not-a-string"),
    ],
)
async def test_an_unknown_command_type_is_422_unknown_command(
    admin: httpx.AsyncClient, body: dict[str, Any], message_part: str
) -> None:
    """An unknown, missing or internal-only `type`: 422 unknown_command at $.type."""
    problem = assert_problem(await send(admin, body), 422, "unknown_command")
    assert error_paths(problem) == ["$.type"]
    assert message_part in problem["errors"][0]["message"]


# --- business rules over HTTP (409) ----------------------------------------------------------


async def test_creating_an_existing_sku_is_409_sku_exists(admin: httpx.AsyncClient) -> None:
    """CreateProduct twice with one sku: the second is 409 sku_exists."""
    sku, _ = await create_product(admin)
    assert_problem(await send(admin, product(sku)), 409, "sku_exists")


ON_A_PRODUCT = [
    spec
    for spec in REGISTRY.specs
    if spec.public and spec.kind is PRODUCT and spec.decide is not products.create
]
"""Every public command on an existing product: all but the one that creates it."""


@pytest.mark.parametrize("spec", ON_A_PRODUCT, ids=lambda spec: spec.name)
async def test_a_command_on_a_missing_product_is_409_unknown_product(
    admin: httpx.AsyncClient, spec: CommandSpec[Any, Any]
) -> None:
    """Product commands on a sku that does not exist: 409 unknown_product."""
    body = {"type": spec.name, **example_document(spec.command_type), "sku": unique_sku("NONE")}
    assert_problem(await send(admin, body), 409, "unknown_product")


async def test_restocking_a_discontinued_product_is_409_product_discontinued(
    admin: httpx.AsyncClient,
) -> None:
    """DiscontinueProduct, then RestockProduct: 409 product_discontinued."""
    sku, _ = await create_product(admin)
    discontinued = await send(admin, {"type": "DiscontinueProduct", "sku": sku})
    assert discontinued.status_code == 200, discontinued.text
    restock = await send(admin, {"type": "RestockProduct", "sku": sku, "quantity": 5})
    assert_problem(restock, 409, "product_discontinued")


ON_AN_ORDER = [
    spec for spec in REGISTRY.specs if spec.public and spec.kind is ORDER and spec.assign_id is None
]
"""Every public command on an existing order (CancelOrder, ShipOrder): all but PlaceOrder."""


@pytest.mark.parametrize("spec", ON_AN_ORDER, ids=lambda spec: spec.name)
async def test_a_command_on_a_missing_order_is_409_unknown_order(
    admin: httpx.AsyncClient, spec: CommandSpec[Any, Any]
) -> None:
    """A command on an order id that does not exist: 409 unknown_order."""
    body = {"type": spec.name, **example_document(spec.command_type), "order_id": UNKNOWN_ORDER}
    assert_problem(await send(admin, body), 409, "unknown_order")


async def test_cancelling_a_shipped_order_is_409_order_not_cancellable(
    admin: httpx.AsyncClient, alice: httpx.AsyncClient
) -> None:
    """Place → confirmed → ShipOrder → CancelOrder: 409 order_not_cancellable."""
    _sku, _command, order_id = await placed_order(alice, admin)
    shipped = await send(admin, {"type": "ShipOrder", "order_id": order_id})
    assert shipped.status_code == 200, shipped.text
    cancel = await send(alice, {"type": "CancelOrder", "order_id": order_id})
    assert_problem(cancel, 409, "order_not_cancellable")
    by_admin = await send(admin, {"type": "CancelOrder", "order_id": order_id})
    assert_problem(by_admin, 409, "order_not_cancellable")


async def test_shipping_a_cancelled_order_is_409_order_not_shippable(
    admin: httpx.AsyncClient, alice: httpx.AsyncClient
) -> None:
    """A confirmed order cancelled by its owner cannot be shipped: 409 order_not_shippable."""
    _sku, _command, order_id = await placed_order(alice, admin)
    cancelled = await send(alice, {"type": "CancelOrder", "order_id": order_id, "reason": "oops"})
    assert cancelled.status_code == 200, cancelled.text
    ship = await send(admin, {"type": "ShipOrder", "order_id": order_id})
    assert_problem(ship, 409, "order_not_shippable")


async def test_shipping_an_unconfirmed_order_is_409_order_not_shippable(
    admin: httpx.AsyncClient, alice: httpx.AsyncClient
) -> None:
    """An order rejected by the payment gateway (never confirmed): 409 order_not_shippable."""
    _sku, _command, order_id = await placed_order(
        alice, admin, card=DECLINED_CARD, status="rejected"
    )
    ship = await send(admin, {"type": "ShipOrder", "order_id": order_id})
    assert_problem(ship, 409, "order_not_shippable")


async def test_cancelling_another_customers_order_is_403_forbidden(
    admin: httpx.AsyncClient, alice: httpx.AsyncClient, bob: httpx.AsyncClient
) -> None:
    """Bob may not cancel Alice's order (403 forbidden); it stays confirmed and Alice still can."""
    _sku, _command, order_id = await placed_order(alice, admin)
    refused = await send(bob, {"type": "CancelOrder", "order_id": order_id})
    assert_problem(refused, 403, "forbidden")
    order = await alice.get(f"/api/orders/{order_id}")
    assert order.json()["status"] == "confirmed"
    mine = await send(alice, {"type": "CancelOrder", "order_id": order_id})
    assert mine.status_code == 200, mine.text


# --- Idempotency-Key ---------------------------------------------------------------------------


async def test_reusing_an_idempotency_key_with_another_body_is_409(
    admin: httpx.AsyncClient,
) -> None:
    """Same key, different body: 409 idempotency_key_reused; the second body is not run."""
    first_sku, second_sku = unique_sku(), unique_sku()
    key = f"key-{first_sku}"
    first = await send(admin, product(first_sku), Idempotency_Key=key)
    assert first.status_code == 200, first.text
    reused = await send(admin, product(second_sku), Idempotency_Key=key)
    assert_problem(reused, 409, "idempotency_key_reused")
    created = await send(admin, product(second_sku))
    assert created.status_code == 200, created.text  # second_sku was never created


async def test_an_idempotency_key_is_scoped_to_its_user(
    alice: httpx.AsyncClient, bob: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    """Two users may use the same key for different requests: both run (no 409)."""
    sku, _ = await create_product(admin, stock=5)
    key = f"shared-{sku}"
    body = {"type": "PlaceOrder", "lines": [{"sku": sku, "quantity": 1}], "card_number": GOOD_CARD}
    first = await send(alice, body, Idempotency_Key=key)
    second = await send(bob, {**body, "lines": [{"sku": sku, "quantity": 2}]}, Idempotency_Key=key)
    assert first.status_code == 202, first.text
    assert second.status_code == 202, second.text
    assert first.json()["command_id"] != second.json()["command_id"]


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("k" * 129, id="129-chars"),
        pytest.param("has space", id="space"),
        pytest.param("", id="empty"),
        pytest.param("tab\tkey", id="tab"),
    ],
)
async def test_a_malformed_idempotency_key_is_422(admin: httpx.AsyncClient, key: str) -> None:
    """Idempotency-Key must be 1-128 visible ASCII characters: else 422 validation_failed."""
    sku = unique_sku()
    response = await send(admin, product(sku), Idempotency_Key=key)
    body = assert_problem(response, 422, "validation_failed")
    assert error_paths(body) == ["Idempotency-Key"]
    created = await send(admin, product(sku))
    assert created.status_code == 200, created.text  # nothing ran under the bad key


async def test_an_idempotency_key_of_128_visible_characters_is_accepted(
    admin: httpx.AsyncClient,
) -> None:
    """The longest allowed key, with punctuation: 200."""
    key = ("!~#" + "x" * 128)[:128]
    response = await send(admin, product(), Idempotency_Key=key)
    assert response.status_code == 200, response.text
