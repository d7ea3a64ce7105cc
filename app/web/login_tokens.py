"""Signed values of signing in, before a session exists (HMAC with SECRET_KEY).

* The login form's token: a cookie holding when it was issued and a nonce, and a hidden field
  holding the cookie's MAC (a signed double submit). Another site can neither read the field
  nor set a matching pair.
* The device cookie: a browser a user signed in on is a known device for that user, so the
  sign-in throttle never makes it wait for anyone else's attempts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

import msgspec

LOGIN_COOKIE = "sf_login"
LOGIN_TOKEN_SECONDS = 2 * 3600
DEVICE_COOKIE = "sf_device"
DEVICE_SECONDS = 180 * 24 * 3600
_ISSUED = re.compile(r"[0-9]{1,12}")


class LoginToken(msgspec.Struct, frozen=True):
    cookie: str
    field: str


class KnownDevice(msgspec.Struct, frozen=True):
    username: str
    device: str


def _mac(secret: str, *parts: str) -> str:
    digest = hmac.new(secret.encode(), "\x00".join(parts).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def issue_login_token(secret: str, now: float) -> LoginToken:
    cookie = f"{int(now)}.{secrets.token_urlsafe(16)}"
    return LoginToken(cookie, _mac(secret, "login", cookie))


def login_token_valid(secret: str, cookie: str | None, field: str | None, now: float) -> bool:
    if not cookie or not field or len(cookie) > 64 or len(field) > 64:
        return False
    issued = cookie.partition(".")[0]
    if not _ISSUED.fullmatch(issued) or not 0 <= now - int(issued) <= LOGIN_TOKEN_SECONDS:
        return False
    return _same(_mac(secret, "login", cookie), field)


def device_cookie(secret: str, username: str) -> str:
    nonce = secrets.token_urlsafe(12)
    return f"{username}:{nonce}:{_mac(secret, 'device', username, nonce)}"


def known_device(secret: str, cookie: str | None) -> KnownDevice | None:
    """Whose device a device cookie says this browser is, if its signature holds."""
    if not cookie or len(cookie) > 200:
        return None
    username, _, rest = cookie.partition(":")
    nonce, _, mac = rest.partition(":")
    if not username or not nonce or not _same(_mac(secret, "device", username, nonce), mac):
        return None
    return KnownDevice(username, nonce)
