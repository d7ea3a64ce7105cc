"""The sign-in throttle (README, contract additions): per (username, address) and per address,
exponential backoff with Retry-After, and a known device is never locked out.

Client addresses are given with X-Forwarded-For, which the web process trusts from 127.0.0.1
(FORWARDED_ALLOW_IPS), as it would from a proxy in front of it.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import httpx
import pytest

from app.adapters.login_throttle import FREE_PER_ADDRESS
from tests.support.api_client import (
    COOKIE,
    DEVICE_COOKIE,
    PASSWORDS,
    Storefront,
    assert_problem,
    login_form_fields,
    running_storefront,
)
from tests.support.polling import eventually

_addresses = itertools.count(1)


@pytest.fixture(scope="module")
def storefront(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storefront]:
    with running_storefront(tmp_path_factory.mktemp("throttle")) as made:
        yield made


@pytest.fixture
def address() -> str:
    """A client address no other test used."""
    return f"10.77.0.{next(_addresses)}"


def from_address(
    storefront: Storefront,
    address: str,
    *,
    cookies: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=storefront.base_url,
        headers={"X-Forwarded-For": address, **(headers or {})},
        cookies=cookies,
        timeout=30,
    )


async def sign_in(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post("/api/session", json={"username": username, "password": password})


async def fail_until_throttled(client: httpx.AsyncClient, username: str, limit: int = 40) -> int:
    """Wrong passwords until the answer is 429; that answer's Retry-After (seconds)."""
    for _ in range(limit):
        response = await sign_in(client, username, "not-the-password")
        if response.status_code == 429:
            assert_problem(response, 429, "too_many_attempts")
            retry_after = int(response.headers["retry-after"])
            assert retry_after >= 1
            return retry_after
        assert_problem(response, 401, "invalid_credentials")
    raise AssertionError(f"{username} was never throttled in {limit} wrong passwords")


async def test_wrong_passwords_from_one_address_do_not_lock_the_user_out_elsewhere(
    storefront: Storefront, address: str
) -> None:
    """Anyone could lock any account (admin included) with ten wrong passwords; now the limit
    is per (username, address): the owner, elsewhere, signs in at once."""
    async with from_address(storefront, address) as attacker:
        await fail_until_throttled(attacker, "admin")
    async with from_address(storefront, f"{address}9") as owner:
        response = await sign_in(owner, "admin", "admin-pass")
    assert response.status_code == 200, response.text


async def test_the_backoff_ends_and_the_right_password_then_works(
    storefront: Storefront, address: str
) -> None:
    """A throttled sign-in is 429 with Retry-After; once that has passed, the right password
    works (no hard 5-minute lock)."""
    async with from_address(storefront, address) as client:
        retry_after = await fail_until_throttled(client, "bob")
        assert retry_after <= 60  # the first steps of the backoff are short

        async def attempt() -> httpx.Response:
            return await sign_in(client, "bob", "bob-pass")

        signed_in = await eventually(
            attempt, until=lambda r: r.status_code != 429, timeout=retry_after + 30, interval=0.2
        )
    assert signed_in.status_code == 200, signed_in.text


async def test_one_address_trying_many_usernames_is_throttled_as_a_whole(
    storefront: Storefront, address: str
) -> None:
    """Password spraying: many usernames from one address hit the per-address limit; the same
    username from another address is not affected."""
    async with from_address(storefront, address) as sprayer:
        for index in itertools.count():
            response = await sign_in(sprayer, f"spray{index}", "guess")
            if response.status_code == 429:
                break
            assert_problem(response, 401, "invalid_credentials")
            assert index < 60, "the address was never throttled"
        assert "retry-after" in response.headers
        assert (await sign_in(sprayer, "newname", "guess")).status_code == 429
    async with from_address(storefront, f"{address}9") as other:
        assert_problem(await sign_in(other, "newname", "guess"), 401, "invalid_credentials")


async def test_a_browser_with_a_valid_session_is_never_locked_out(
    storefront: Storefront, address: str
) -> None:
    """Known device: a request carrying the user's valid session cookie signs in even while
    its address is throttled for that user."""
    async with from_address(storefront, address) as owner:
        assert (await sign_in(owner, "alice", "alice-pass")).status_code == 200
        session = owner.cookies[COOKIE]
    async with from_address(storefront, address) as attacker:
        await fail_until_throttled(attacker, "alice")
        assert (await sign_in(attacker, "alice", "alice-pass")).status_code == 429
    async with from_address(storefront, address, cookies={COOKIE: session}) as owner:
        response = await sign_in(owner, "alice", "alice-pass")
    assert response.status_code == 200, response.text


async def test_a_browser_that_signed_in_before_is_a_known_device_after_logout(
    storefront: Storefront, address: str
) -> None:
    """A successful sign-in leaves a signed device cookie; after logging out, that browser is
    still known and is not locked out by someone else's wrong passwords."""
    async with from_address(storefront, address) as owner:
        assert (await sign_in(owner, "bob", "bob-pass")).status_code == 200
        device = owner.cookies[DEVICE_COOKIE]
        logout = await owner.delete("/api/session", headers={"Origin": storefront.origin})
        assert logout.status_code == 204, logout.text
    async with from_address(storefront, address) as attacker:
        await fail_until_throttled(attacker, "bob")
    async with from_address(storefront, address, cookies={DEVICE_COOKIE: device}) as owner:
        response = await sign_in(owner, "bob", "bob-pass")
    assert response.status_code == 200, response.text
    async with from_address(storefront, address, cookies={DEVICE_COOKIE: device}) as thief:
        wrong_user = await sign_in(thief, "admin", "wrong")  # the device is bob's, not admin's
    assert wrong_user.status_code in (401, 429)


async def test_a_throttled_login_form_says_when_to_try_again(
    storefront: Storefront, address: str
) -> None:
    """The HTML form: 429 with Retry-After and the login page saying to wait (no traceback)."""
    async with from_address(
        storefront, address, headers={"Origin": storefront.origin, "Accept": "text/html"}
    ) as browser:
        for _ in range(40):
            fields = await login_form_fields(browser)
            response = await browser.post(
                "/login", data={"username": "bob", "password": "nope", "next": "/", **fields}
            )
            if response.status_code == 429:
                break
            assert response.status_code == 401, response.text
        assert response.status_code == 429, response.text
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["content-type"].startswith("text/html")
    assert "Too many failed sign-ins" in response.text
    assert "Traceback" not in response.text


async def test_many_people_signing_in_behind_one_address_are_not_slowed(
    storefront: Storefront, address: str
) -> None:
    """An address counts failures only: after some wrong passwords from it, fifteen people
    signing in at once from behind it all get in."""
    async with from_address(storefront, address) as office:
        for index in range(FREE_PER_ADDRESS - 1):
            assert_problem(await sign_in(office, f"typo{index}", "x"), 401, "invalid_credentials")
        answers = await asyncio.gather(
            *(sign_in(office, name, PASSWORDS[name]) for name in PASSWORDS for _ in range(5))
        )
    assert [a.status_code for a in answers] == [200] * 15, [a.text for a in answers]
