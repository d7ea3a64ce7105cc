"""An unexpected error: a clean 500 that keeps the security headers and the connection.

The app is called in process (no Redis, no lifespan): a route that raises stands in for a bug.
An exception escaping the app is what made uvicorn drop the keep-alive connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response

from app.config import load_settings
from app.web.app import create_app
from app.web.middleware import SECURITY_HEADERS


async def boom(request: Request) -> Response:
    raise RuntimeError("a bug")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(load_settings({"LOG_LEVEL": "CRITICAL"}))
    app.add_route("/api/boom", boom)
    app.add_route("/boom", boom)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as made:
        yield made


def assert_secured(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS:
        assert response.headers.get(name.decode()) == value.decode(), name


async def test_an_api_crash_is_a_500_problem_with_the_security_headers(
    client: httpx.AsyncClient,
) -> None:
    """The exception stays inside the app (no re-raise), the answer is problem+json."""
    response = await client.get("/api/boom")
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "internal_error"
    assert "a bug" not in response.text
    assert_secured(response)


async def test_a_page_crash_is_a_friendly_500_page_with_the_security_headers(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/boom", headers={"Accept": "text/html"})
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")
    assert "Something went wrong" in response.text
    assert "Traceback" not in response.text and "a bug" not in response.text
    assert_secured(response)


async def test_every_answer_carries_the_security_headers(client: httpx.AsyncClient) -> None:
    """404s and 405s from the router too."""
    assert_secured(await client.get("/api/no-such-route"))
    assert_secured(await client.delete("/healthz"))
