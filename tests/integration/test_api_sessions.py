"""API.md "Sessions and users": JSON sessions, the HTML login form, and CSRF protection."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.api_client import (
    COOKIE,
    Storefront,
    assert_problem,
    login_form_fields,
    running_storefront,
    send,
    unique_sku,
)

FOREIGN = "https://evil.example"


@pytest.fixture(scope="module")
def storefront(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storefront]:
    with running_storefront(tmp_path_factory.mktemp("sessions")) as made:
        yield made


def create_body(sku: str) -> dict[str, object]:
    return {"type": "CreateProduct", "sku": sku, "name": "Csrf mug", "price_cents": 500}


# --- POST /api/session ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "password", "roles"),
    [("alice", "alice-pass", ["customer"]), ("admin", "admin-pass", ["admin"])],
)
async def test_login_answers_user_roles_csrf_token_and_sets_a_lax_httponly_cookie(
    storefront: Storefront, username: str, password: str, roles: list[str]
) -> None:
    """200 with username, roles and csrf_token; the cookie is HttpOnly, SameSite=Lax, and works."""
    async with storefront.client() as anon:
        response = await anon.post(
            "/api/session", json={"username": username, "password": password}
        )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["username"] == username
    assert body["roles"] == roles
    assert isinstance(body["csrf_token"], str) and len(body["csrf_token"]) >= 16
    cookie = response.headers["set-cookie"]
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert attributes[0].startswith(f"{COOKIE}=") and len(attributes[0]) > len(COOKIE) + 10
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "path=/" in attributes
    token = response.cookies[COOKIE]
    async with httpx.AsyncClient(
        base_url=storefront.base_url, cookies={COOKIE: token}
    ) as signed_in:
        orders = await signed_in.get("/api/orders")
    assert orders.status_code == 200, orders.text


@pytest.mark.parametrize(
    ("username", "password"), [("alice", "wrong-pass"), ("nobody", "alice-pass"), ("alice", "")]
)
async def test_wrong_credentials_are_401_invalid_credentials_without_a_cookie(
    storefront: Storefront, username: str, password: str
) -> None:
    """A wrong password or an unknown user: 401 invalid_credentials, and no session cookie."""
    async with storefront.client() as anon:
        response = await anon.post(
            "/api/session", json={"username": username, "password": password}
        )
    assert_problem(response, 401, "invalid_credentials")
    assert COOKIE not in response.cookies


async def test_login_with_a_body_that_is_not_json_is_400_malformed_json(
    storefront: Storefront,
) -> None:
    """A JSON content type with a broken body: 400 malformed_json."""
    async with storefront.client() as anon:
        response = await anon.post(
            "/api/session",
            content=b'{"username": "alice", "password": ',
            headers={"Content-Type": "application/json"},
        )
    assert_problem(response, 400, "malformed_json")


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        ("application/x-www-form-urlencoded", b"username=alice&password=alice-pass"),
        ("text/plain", b'{"username": "alice", "password": "alice-pass"}'),
    ],
)
async def test_login_with_a_non_json_media_type_is_415(
    storefront: Storefront, content_type: str, content: bytes
) -> None:
    """Only application/json is accepted: 415 unsupported_media_type, and no cookie."""
    async with storefront.client() as anon:
        response = await anon.post(
            "/api/session", content=content, headers={"Content-Type": content_type}
        )
    assert_problem(response, 415, "unsupported_media_type")
    assert COOKIE not in response.cookies


async def test_logout_ends_the_session(storefront: Storefront) -> None:
    """DELETE /api/session: 204, the cookie is cleared, and the old token no longer works (401)."""
    identity = storefront.login("alice")
    async with storefront.client(identity) as alice:
        assert (await alice.get("/api/orders")).status_code == 200
        response = await alice.delete("/api/session")
    assert response.status_code == 204, response.text
    cleared = [part.strip().lower() for part in response.headers["set-cookie"].split(";")]
    assert cleared[0] in (f'{COOKIE}=""', f"{COOKIE}=") and "max-age=0" in cleared
    async with storefront.client(identity) as replayed:  # the old cookie, sent on purpose
        assert_problem(await replayed.get("/api/orders"), 401, "unauthenticated")
        sku = unique_sku()
        assert_problem(await send(replayed, create_body(sku)), 401, "unauthenticated")


async def test_logout_form_ends_the_session_and_redirects(storefront: Storefront) -> None:
    """HTML POST /logout (own Origin): 303, and the old cookie no longer authenticates."""
    identity = storefront.login("bob")
    async with storefront.client(
        identity, csrf=False, headers={"Origin": storefront.origin}
    ) as browser:
        response = await browser.post("/logout")
    assert response.status_code == 303, response.text
    async with storefront.client(identity) as replayed:
        assert_problem(await replayed.get("/api/orders"), 401, "unauthenticated")


async def test_a_cross_site_logout_form_is_refused(storefront: Storefront) -> None:
    """HTML POST /logout from a foreign Origin: 403, and the session stays valid."""
    identity = storefront.login("bob")
    async with storefront.client(identity, csrf=False, headers={"Origin": FOREIGN}) as forged:
        assert (await forged.post("/logout")).status_code == 403
    async with storefront.client(identity) as bob:
        assert (await bob.get("/api/orders")).status_code == 200


async def test_logout_is_csrf_protected(storefront: Storefront) -> None:
    """A cross-site DELETE /api/session is refused (403 csrf_failed) and the session survives."""
    identity = storefront.login("bob")
    async with storefront.client(identity, csrf=False, headers={"Origin": FOREIGN}) as forged:
        assert_problem(await forged.delete("/api/session"), 403, "csrf_failed")
    async with storefront.client(identity) as bob:
        assert (await bob.get("/api/orders")).status_code == 200


# --- HTML login -------------------------------------------------------------------------------


async def test_login_form_sets_the_cookie_and_redirects(storefront: Storefront) -> None:
    """POST /login (form, own Origin): 303 to `next`, with an HttpOnly session cookie that works."""
    async with storefront.client(headers={"Origin": storefront.origin}) as browser:
        fields = await login_form_fields(browser)
        response = await browser.post(
            "/login",
            data={"username": "bob", "password": "bob-pass", "next": "/orders", **fields},
        )
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/orders"
        assert "httponly" in response.headers["set-cookie"].lower()
        token = response.cookies[COOKIE]
    async with httpx.AsyncClient(base_url=storefront.base_url, cookies={COOKIE: token}) as bob:
        orders = await bob.get("/api/orders")
    assert orders.status_code == 200, orders.text


async def test_login_form_with_a_wrong_password_shows_an_error_page(
    storefront: Storefront,
) -> None:
    """A wrong password: 401 with the login page and its error message, no traceback, no cookie."""
    async with storefront.client(
        headers={"Origin": storefront.origin, "Accept": "text/html"}
    ) as browser:
        fields = await login_form_fields(browser)
        response = await browser.post(
            "/login", data={"username": "bob", "password": "nope", "next": "/", **fields}
        )
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/html")
    assert "Wrong username or password" in response.text
    assert "Traceback" not in response.text
    assert COOKIE not in response.cookies


@pytest.mark.parametrize("accept", ["text/html", "application/json"])
async def test_login_form_from_a_foreign_origin_is_refused(
    storefront: Storefront, accept: str
) -> None:
    """A cross-site POST /login (login CSRF) is refused with 403 and sets no cookie."""
    async with storefront.client(headers={"Origin": FOREIGN, "Accept": accept}) as attacker:
        fields = await login_form_fields(attacker)  # even with a valid pre-session token
        response = await attacker.post(
            "/login", data={"username": "bob", "password": "bob-pass", "next": "/", **fields}
        )
    assert response.status_code == 403, response.text
    assert COOKIE not in response.cookies
    assert "set-cookie" not in response.headers
    if accept == "application/json":
        assert_problem(response, 403, "csrf_failed")
    else:
        assert "Traceback" not in response.text


# --- CSRF on cookie-authenticated unsafe requests ---------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Origin": FOREIGN}, id="foreign-origin"),
        pytest.param({"Origin": "null"}, id="null-origin"),
        pytest.param({}, id="no-origin-no-fetch-site-no-token"),
        pytest.param({"Sec-Fetch-Site": "cross-site"}, id="sec-fetch-site-cross-site"),
        pytest.param({"Sec-Fetch-Site": "same-site"}, id="sec-fetch-site-same-site"),
        pytest.param({"X-CSRF-Token": "not-the-token"}, id="wrong-token"),
    ],
)
async def test_cross_site_command_is_403_csrf_failed_and_not_run(
    storefront: Storefront, headers: dict[str, str]
) -> None:
    """A cookie-authenticated POST /api/commands that is not provably same-site: 403, no effect."""
    sku = unique_sku("CSRF")
    async with storefront.client("admin", csrf=False, headers=headers) as forged:
        assert_problem(await send(forged, create_body(sku)), 403, "csrf_failed")
    async with storefront.client("admin") as admin:
        again = await send(admin, create_body(sku))
    assert again.status_code == 200, again.text  # the forged request created nothing


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"__token__": ""}, id="x-csrf-token"),
        pytest.param({"__origin__": ""}, id="own-origin"),
        pytest.param({"Sec-Fetch-Site": "same-origin"}, id="sec-fetch-site-same-origin"),
    ],
)
async def test_same_origin_or_token_command_is_accepted(
    storefront: Storefront, headers: dict[str, str]
) -> None:
    """The session's X-CSRF-Token, the app's own Origin, or Sec-Fetch-Site: same-origin → 200."""
    identity = storefront.identity("admin")
    real = dict(headers)
    if real.pop("__token__", None) is not None:
        real["X-CSRF-Token"] = identity.csrf_token
    if real.pop("__origin__", None) is not None:
        real["Origin"] = storefront.origin
    sku = unique_sku("CSRF")
    async with storefront.client(identity, csrf=False, headers=real) as admin:
        response = await send(admin, create_body(sku))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "succeeded"
