"""Signed sign-in values: the login form's pre-session token and the device cookie."""

from __future__ import annotations

import pytest

from app.web.login_tokens import (
    LOGIN_TOKEN_SECONDS,
    KnownDevice,
    device_cookie,
    issue_login_token,
    known_device,
    login_token_valid,
)

SECRET = "s" * 40
NOW = 1_750_000_000.0


def test_a_login_token_is_valid_with_its_own_cookie() -> None:
    token = issue_login_token(SECRET, NOW)
    assert login_token_valid(SECRET, token.cookie, token.field, NOW + 60)


def test_each_login_token_is_new() -> None:
    assert issue_login_token(SECRET, NOW) != issue_login_token(SECRET, NOW)


@pytest.mark.parametrize(
    "change",
    ["other-cookie", "other-field", "no-cookie", "no-field", "other-secret", "expired", "future"],
)
def test_a_login_token_is_refused_unless_cookie_field_secret_and_time_agree(change: str) -> None:
    token = issue_login_token(SECRET, NOW)
    other = issue_login_token(SECRET, NOW)
    cookie: str | None = token.cookie
    field: str | None = token.field
    secret, now = SECRET, NOW
    if change == "other-cookie":
        cookie = other.cookie
    elif change == "other-field":
        field = other.field
    elif change == "no-cookie":
        cookie = None
    elif change == "no-field":
        field = ""
    elif change == "other-secret":
        secret = "t" * 40
    elif change == "expired":
        now = NOW + LOGIN_TOKEN_SECONDS + 1
    else:
        now = NOW - 60
    assert not login_token_valid(secret, cookie, field, now)


@pytest.mark.parametrize(
    "cookie", ["", "x", "²³.abc", "9" * 5000 + ".abc", "1.2.3", "\x00", "é.é", "-1.abc"]
)
def test_garbage_login_cookies_are_refused_without_error(cookie: str) -> None:
    assert not login_token_valid(SECRET, cookie, "é" * 10, NOW)


def test_a_device_cookie_names_its_user() -> None:
    cookie = device_cookie(SECRET, "alice")
    found = known_device(SECRET, cookie)
    assert isinstance(found, KnownDevice)
    assert found.username == "alice"
    assert known_device(SECRET, device_cookie(SECRET, "alice")) != found  # one per sign-in


@pytest.mark.parametrize("tamper", ["user", "secret", "mac", "garbage"])
def test_a_tampered_device_cookie_is_unknown(tamper: str) -> None:
    cookie = device_cookie(SECRET, "alice")
    secret = SECRET
    if tamper == "user":
        cookie = "admin" + cookie[len("alice") :]
    elif tamper == "secret":
        secret = "t" * 40
    elif tamper == "mac":
        cookie = cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB")
    else:
        cookie = "::é\x00" * 10
    assert known_device(secret, cookie) is None
