"""Issue 9 "Hardening": every bad input gets a clear 4xx with the security headers, uploads are
checked before they are read, login CSRF is refused, and free text is plain text."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.api_client import (
    COOKIE,
    LOGIN_TOKEN_COOKIE,
    Storefront,
    assert_problem,
    create_product,
    error_paths,
    login_form_fields,
    placed_order,
    running_storefront,
    send,
    unique_sku,
)

MIB = 1024 * 1024
SECURITY_HEADERS = (
    "content-security-policy",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
)
FOREIGN = "https://evil.example"
DEEP_LIST = b"[" * 3000 + b"]" * 3000
DEEP_OBJECT = b'{"":' * 1500 + b"1" + b"}" * 1500  # fits the 8 KiB sign-in cap


@pytest.fixture(scope="module")
def storefront(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storefront]:
    with running_storefront(
        tmp_path_factory.mktemp("hardening"), workers=("commands", "projector", "process")
    ) as made:
        yield made


def assert_secured(response: httpx.Response) -> None:
    missing = [name for name in SECURITY_HEADERS if name not in response.headers]
    assert not missing, (response.status_code, missing, response.headers)


def assert_no_server_error(storefront: Storefront) -> None:
    log = storefront.web.output()
    assert "Traceback" not in log, log[-4000:]


# --- JSON bodies --------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [DEEP_LIST, DEEP_OBJECT], ids=["list", "object"])
@pytest.mark.parametrize("path", ["/api/commands", "/api/session"])
async def test_json_nested_thousands_deep_is_400_malformed_json(
    storefront: Storefront, raw: bytes, path: str
) -> None:
    """`[[[…]]]` or `{"a":{"a":…}}` thousands deep: 400 malformed_json (was an uncaught
    RecursionError, a 500 without the security headers that dropped the connection)."""
    async with storefront.client() as anon:
        response = await anon.post(path, content=raw, headers={"Content-Type": "application/json"})
        body = assert_problem(response, 400, "malformed_json")
        assert "deep" in body["detail"]
        assert_secured(response)
        again = await anon.get("/healthz")  # the same keep-alive connection still answers
    assert again.status_code == 200
    assert_no_server_error(storefront)


async def test_a_deep_json_list_in_the_import_form_is_a_form_error(storefront: Storefront) -> None:
    """The import form's text area takes a JSON list: nested thousands deep, it is a 422 form."""
    async with storefront.client("admin") as admin:
        response = await admin.post("/ui/commands/ImportCatalog", data={"csv": DEEP_LIST.decode()})
    assert response.status_code == 422, response.text
    assert_secured(response)
    assert "Traceback" not in response.text
    assert_no_server_error(storefront)


# --- query parameters, form fields ------------------------------------------------------------

NOT_A_SMALL_NUMBER = ["²", "٣", "\U0001d7d7", "9" * 5000, "-1", "1.5", " 7", "0x10", ""]


@pytest.mark.parametrize("value", NOT_A_SMALL_NUMBER)
@pytest.mark.parametrize("path", ["/api/products", "/api/orders"])
async def test_a_limit_that_is_not_an_ascii_number_in_range_is_422(
    storefront: Storefront, path: str, value: str
) -> None:
    """`limit=²` (isdigit() is true, int() fails) or 5,000 digits: 422 on `limit`, never 500."""
    async with storefront.client("alice") as alice:
        response = await alice.get(path, params={"limit": value})
    body = assert_problem(response, 422, "validation_failed")
    assert error_paths(body) == ["limit"]
    assert_secured(response)


@pytest.mark.parametrize("value", ["²", "٣", "9" * 5000, "1e3"])
async def test_a_cart_quantity_that_is_not_an_ascii_number_is_422(
    storefront: Storefront, value: str
) -> None:
    """POST /ui/cart with quantity `²` or 5,000 digits: 422 on the quantity."""
    async with storefront.client("alice") as alice:
        response = await alice.post("/ui/cart", data={"sku": "MUG-BLUE", "quantity": value})
    body = assert_problem(response, 422, "validation_failed")
    assert error_paths(body) == ["$.quantity"]
    assert_secured(response)


@pytest.mark.parametrize("value", ["²", "9" * 5000])
async def test_a_form_number_that_is_not_an_ascii_number_is_a_field_error(
    storefront: Storefront, value: str
) -> None:
    """The admin's Create form with price `²` or 5,000 digits: the form again, 422."""
    async with storefront.client("admin") as admin:
        response = await admin.post(
            "/ui/commands/CreateProduct",
            data={"sku": unique_sku(), "name": "Mug", "price_cents": value},
        )
    assert response.status_code == 422, response.text
    assert 'data-error-for="price_cents"' in response.text
    assert_secured(response)
    assert_no_server_error(storefront)


# --- uploads and form bodies: checked before they are read ------------------------------------


def upload(size: int) -> dict[str, tuple[str, bytes, str]]:
    return {"file": ("catalog.csv", b"A" * size, "text/csv")}


async def test_an_anonymous_upload_is_401_before_it_is_read(storefront: Storefront) -> None:
    """Anonymous multipart upload to the import form: 401 unauthenticated (it was read first)."""
    async with storefront.client() as anon:
        response = await anon.post("/ui/commands/ImportCatalog", files=upload(8 * MIB))
    assert_problem(response, 401, "unauthenticated")
    assert_secured(response)


async def test_a_customer_upload_is_403_before_it_is_read(storefront: Storefront) -> None:
    """A customer's upload to the admin's import form: 403 forbidden, whatever its size."""
    async with storefront.client("alice") as alice:
        response = await alice.post("/ui/commands/ImportCatalog", files=upload(8 * MIB))
    assert_problem(response, 403, "forbidden")


async def test_an_admin_upload_over_the_cap_is_413(storefront: Storefront) -> None:
    """An admin's 8 MiB upload: 413 payload_too_large, capped before the form is parsed."""
    async with storefront.client("admin") as admin:
        response = await admin.post("/ui/commands/ImportCatalog", files=upload(8 * MIB))
    assert_problem(response, 413, "payload_too_large")
    assert_secured(response)


@pytest.mark.parametrize("path", ["/login", "/ui/cart", "/ui/orders"])
async def test_a_form_body_over_its_cap_is_413(storefront: Storefront, path: str) -> None:
    """Form posts are size-capped too (a sign-in form is a few hundred bytes)."""
    async with storefront.client(None if path == "/login" else "alice") as client:
        response = await client.post(path, data={"username": "x" * (2 * MIB)})
    assert_problem(response, 413, "payload_too_large")
    assert_secured(response)


async def raw_answer(port: int, head: bytes) -> bytes:
    """Send only a request head (no body) and read the answer's status line and headers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        await writer.drain()
        async with asyncio.timeout(20):  # a generous bound: the body never comes
            return await reader.readuntil(b"\r\n\r\n")
    finally:
        writer.close()


async def test_an_anonymous_upload_is_answered_without_waiting_for_its_body(
    storefront: Storefront,
) -> None:
    """An 8 MiB upload announced by an anonymous client is refused before a byte is read."""
    head = (
        b"POST /ui/commands/ImportCatalog HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: multipart/form-data; boundary=xyz\r\n"
        + f"Content-Length: {8 * MIB}\r\n\r\n".encode()
    )
    answer = await raw_answer(storefront.port, head)
    assert answer.startswith(b"HTTP/1.1 401"), answer


# --- login CSRF: pre-session forms --------------------------------------------------------------


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
async def test_a_login_form_post_from_another_site_without_origin_is_refused(
    storefront: Storefront, site: str
) -> None:
    """`Sec-Fetch-Site: cross-site` (or same-site) and no Origin: 403, no session cookie
    (it signed the browser in)."""
    async with storefront.client(headers={"Accept": "text/html"}) as browser:
        fields = await login_form_fields(browser)
        response = await browser.post(
            "/login",
            data={"username": "bob", "password": "bob-pass", "next": "/", **fields},
            headers={"Sec-Fetch-Site": site},
        )
    assert response.status_code == 403, response.text
    assert COOKIE not in response.cookies
    assert "Traceback" not in response.text
    assert_secured(response)


@pytest.mark.parametrize("fields", ["missing", "forged", "cookie-missing"])
async def test_a_login_form_post_without_its_pre_session_token_is_refused(
    storefront: Storefront, fields: str
) -> None:
    """The login form carries a signed token matching a cookie; without both it is 403."""
    async with storefront.client(headers={"Origin": storefront.origin}) as browser:
        real = await login_form_fields(browser)
        data = {"username": "bob", "password": "bob-pass", "next": "/"}
        if fields == "forged":
            data["login_token"] = real["login_token"][:-4] + "AAAA"
        elif fields == "cookie-missing":
            data.update(real)
            browser.cookies.delete(LOGIN_TOKEN_COOKIE)
        response = await browser.post("/login", data=data)
    assert response.status_code == 403, response.text
    assert COOKIE not in response.cookies


async def test_the_login_form_with_its_token_signs_in(storefront: Storefront) -> None:
    """The page's own form (token + cookie), posted from the app's origin: 303 and a session."""
    async with storefront.client(headers={"Origin": storefront.origin}) as browser:
        fields = await login_form_fields(browser)
        response = await browser.post(
            "/login", data={"username": "bob", "password": "bob-pass", "next": "/", **fields}
        )
    assert response.status_code == 303, response.text
    assert COOKIE in response.cookies


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Sec-Fetch-Site": "cross-site"}, id="cross-site"),
        pytest.param({"Sec-Fetch-Site": "same-site"}, id="same-site"),
        pytest.param({"Origin": FOREIGN}, id="foreign-origin"),
    ],
)
async def test_a_json_sign_in_from_another_site_is_403(
    storefront: Storefront, headers: dict[str, str]
) -> None:
    """POST /api/session from a browser on another site: 403 csrf_failed, no cookie."""
    async with storefront.client(headers=headers) as browser:
        response = await browser.post(
            "/api/session", json={"username": "bob", "password": "bob-pass"}
        )
    assert_problem(response, 403, "csrf_failed")
    assert COOKIE not in response.cookies


async def test_a_json_sign_in_from_a_script_still_works(storefront: Storefront) -> None:
    """A script sends no Origin and no Sec-Fetch-Site: signing in keeps working (API.md)."""
    async with httpx.AsyncClient(base_url=storefront.base_url, timeout=30) as script:
        response = await script.post(
            "/api/session", json={"username": "bob", "password": "bob-pass"}
        )
    assert response.status_code == 200, response.text


# --- free text: no control or direction-override characters -------------------------------

HOSTILE_TEXT = [
    pytest.param("Mug\x00", id="nul"),
    pytest.param("Mug\nsecond line", id="newline"),
    pytest.param("Mug\tname", id="tab"),
    pytest.param("Mug\x85", id="c1-next-line"),
    pytest.param("\u202egum", id="right-to-left-override"),
    pytest.param("Mug\u2066x\u2069", id="isolate"),
    pytest.param("Mug\u200f", id="right-to-left-mark"),
]


@pytest.mark.parametrize("name", HOSTILE_TEXT)
async def test_a_product_name_with_control_or_bidi_characters_is_422(
    admin: httpx.AsyncClient, name: str
) -> None:
    """CreateProduct / RenameProduct: 422 validation_failed on `$.name`, in plain words."""
    sku = unique_sku()
    created = await send(
        admin, {"type": "CreateProduct", "sku": sku, "name": name, "price_cents": 100}
    )
    body = assert_problem(created, 422, "validation_failed")
    assert error_paths(body) == ["$.name"]
    assert "regex" not in body["errors"][0]["message"]
    sku, _ = await create_product(admin)
    renamed = await send(admin, {"type": "RenameProduct", "sku": sku, "name": name})
    assert error_paths(assert_problem(renamed, 422, "validation_failed")) == ["$.name"]


async def test_names_in_other_scripts_are_still_welcome(admin: httpx.AsyncClient) -> None:
    """Plain text in any script (Hebrew, Arabic, emoji, ≠) is a fine name."""
    sku, _ = await create_product(admin)
    for name in ("ספל כחול", "كوب أزرق", "Mug ☕ ≠ cup", "Tasse « bleue »"):
        response = await send(admin, {"type": "RenameProduct", "sku": sku, "name": name})
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("reason", ["late\x00", "changed \u202emind", "two\nlines"])
async def test_a_cancel_reason_with_control_or_bidi_characters_is_422(
    alice: httpx.AsyncClient, admin: httpx.AsyncClient, reason: str
) -> None:
    """CancelOrder's reason: 422 on `$.reason`; the order stays as it was."""
    _sku, _command, order_id = await placed_order(alice, admin)
    response = await send(alice, {"type": "CancelOrder", "order_id": order_id, "reason": reason})
    assert error_paths(assert_problem(response, 422, "validation_failed")) == ["$.reason"]


async def test_import_rows_with_control_or_bidi_names_are_refused_per_row(
    admin: httpx.AsyncClient,
) -> None:
    """ImportCatalog (JSON and the CSV form): every hostile row name is a field error."""
    good, bad_bidi, bad_nul = unique_sku(), unique_sku(), unique_sku()
    rows: list[dict[str, Any]] = [
        {"sku": good, "name": "Fine", "price_cents": 100},
        {"sku": bad_bidi, "name": "\u202eevil", "price_cents": 100},
        {"sku": bad_nul, "name": "nul\x00", "price_cents": 100},
    ]
    response = await send(admin, {"type": "ImportCatalog", "products": rows})
    body = assert_problem(response, 422, "validation_failed")
    assert error_paths(body) == ["$.products[1].name", "$.products[2].name"]
    csv = f'{good},Fine,100\n{bad_bidi},"\u202eevil",100\n{bad_nul},"two\nlines",100\n'
    form = await admin.post("/ui/commands/ImportCatalog", data={"csv": csv})
    assert form.status_code == 422, form.text
    assert 'data-error-path="$.products[1].name"' in form.text
    assert 'data-error-path="$.products[2].name"' in form.text
