"""API.md "Sessions and users": in production there is no default secret and no default user."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.adapters.embedded_redis import free_port
from app.config import DEV_SECRET, ConfigError, load_settings
from tests.support.api_client import COOKIE, assert_problem, base_env, start_web, stop_together
from tests.support.polling import eventually_sync
from tests.support.processes import ROOT, ProcessGroup
from tests.support.redis_server import RedisServer, running_redis

STRONG_SECRET = secrets.token_urlsafe(48)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A Redis of this module's own, durable as production needs: never seeded."""
    with running_redis(tmp_path_factory.mktemp("production-redis"), appendonly=True) as server:
        yield server


@pytest.fixture
def group(redis_server: RedisServer, log_dir: Path) -> Iterator[ProcessGroup]:
    made = ProcessGroup(log_dir, base_env(redis_server.url, APP_ENV="production"))
    try:
        yield made
    finally:
        stop_together(made)


@pytest.mark.parametrize(
    "secret",
    ["", "short", "x" * 31, DEV_SECRET],
    ids=["missing", "short", "31-chars", "the-development-secret"],
)
def test_production_settings_refuse_a_missing_or_weak_secret(secret: str) -> None:
    """load_settings: APP_ENV=production without a 32+ character SECRET_KEY → ConfigError."""
    env = {"APP_ENV": "production"}
    if secret:
        env["SECRET_KEY"] = secret
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_settings(env)


def test_production_settings_accept_a_strong_secret() -> None:
    """A 32+ character secret is taken as given (never replaced by a default)."""
    settings = load_settings({"APP_ENV": "production", "SECRET_KEY": STRONG_SECRET})
    assert settings.production
    assert settings.secret_key == STRONG_SECRET


@pytest.mark.parametrize("secret", ["", "short", DEV_SECRET], ids=["missing", "short", "dev"])
def test_a_production_web_process_without_a_proper_secret_exits_non_zero(
    group: ProcessGroup, secret: str
) -> None:
    """`python -m app.web.serve` in production with no usable SECRET_KEY refuses to start."""
    web = group.start(
        "web", "app.web.serve", extra_env={"PORT": str(free_port()), "SECRET_KEY": secret}
    )
    eventually_sync(lambda: not web.alive(), timeout=60, message="web exits")
    assert web.popen.returncode not in (0, None), web.output()
    assert "SECRET_KEY" in web.output()


async def test_production_has_no_default_users(group: ProcessGroup) -> None:
    """Production with a proper secret: admin/admin-pass and alice/alice-pass do not exist."""
    group.env["SECRET_KEY"] = STRONG_SECRET
    port = free_port()
    start_web(group, port, wait_for_seed=False)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as anon:
        for username in ("admin", "alice", "bob"):
            response = await anon.post(
                "/api/session", json={"username": username, "password": f"{username}-pass"}
            )
            assert_problem(response, 401, "invalid_credentials")
            assert COOKIE not in response.cookies

        created = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "app.cli", "create-user", "carol", "--role", "customer"],
            cwd=ROOT,
            env={**os.environ, **group.env, "STOREFRONT_PASSWORD": "carol-long-password"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert created.returncode == 0, created.stderr
        login = await anon.post(
            "/api/session", json={"username": "carol", "password": "carol-long-password"}
        )
    assert login.status_code == 200, login.text
    assert login.json()["roles"] == ["customer"]
    attributes = [part.strip().lower() for part in login.headers["set-cookie"].split(";")]
    assert "secure" in attributes  # production cookies are never sent over plain HTTP


@pytest.mark.parametrize("module", ["workers.commands", "app.web.serve"])
def test_production_refuses_a_redis_without_its_append_only_file(
    module: str, tmp_path: Path, log_dir: Path
) -> None:
    """Acknowledged commands must survive a Redis restart: without AOF, a production
    process says why and exits instead of serving."""
    with running_redis(tmp_path / "volatile", appendonly=False) as volatile:
        made = ProcessGroup(
            log_dir,
            base_env(
                volatile.url,
                APP_ENV="production",
                SECRET_KEY=STRONG_SECRET,
                PORT=str(free_port()),
            ),
        )
        try:
            proc = made.start("refused", module)
            eventually_sync(lambda: not proc.alive(), timeout=60, message="process exits")
            assert proc.popen.returncode != 0
            assert "append-only file is off" in proc.output()
        finally:
            stop_together(made)


async def create_user(group: ProcessGroup, username: str, password: str, role: str) -> None:
    """`storefront create-user` (the production way of making users)."""
    created = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "app.cli", "create-user", username, "--role", role],
        cwd=ROOT,
        env={**os.environ, **group.env, "STOREFRONT_PASSWORD": password},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert created.returncode == 0, created.stderr


async def test_production_pages_show_no_development_hints(group: ProcessGroup) -> None:
    """The login page listed the development passwords, checkout the test cards: not in
    production."""
    group.env["SECRET_KEY"] = STRONG_SECRET
    port = free_port()
    start_web(group, port, wait_for_seed=False)
    await create_user(group, "dave", "dave-long-password", "customer")
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", timeout=30, headers={"Accept": "text/html"}
    ) as browser:
        login_page = await browser.get("/login")
        assert login_page.status_code == 200
        signed_in = await browser.post(
            "/api/session", json={"username": "dave", "password": "dave-long-password"}
        )
        assert signed_in.status_code == 200, signed_in.text
        browser.cookies.set(COOKIE, signed_in.cookies[COOKIE])  # "secure": not sent over http
        pages = [login_page.text, (await browser.get("/checkout")).text]
        pages.append((await browser.get("/")).text)
    for text in pages:
        for hint in ("admin-pass", "alice-pass", "Development users", "Test cards", "4242"):
            assert hint not in text, hint


async def test_production_metrics_are_not_on_the_public_port_without_a_token(
    group: ProcessGroup,
) -> None:
    """Production without METRICS_TOKEN: /metrics is 404 to everyone."""
    group.env["SECRET_KEY"] = STRONG_SECRET
    port = free_port()
    start_web(group, port, wait_for_seed=False)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as anon:
        assert_problem(await anon.get("/metrics"), 404, "not_found")
        bearer = {"Authorization": "Bearer anything"}
        assert_problem(await anon.get("/metrics", headers=bearer), 404, "not_found")


async def test_metrics_behind_a_token_need_the_bearer(group: ProcessGroup) -> None:
    """METRICS_TOKEN set: /metrics needs `Authorization: Bearer <token>` (401 otherwise)."""
    token = secrets.token_urlsafe(24)
    group.env.update(SECRET_KEY=STRONG_SECRET, METRICS_TOKEN=token)
    port = free_port()
    start_web(group, port, wait_for_seed=False)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        missing = assert_problem(await client.get("/metrics"), 401, "unauthenticated")
        assert missing["detail"]
        wrong = await client.get("/metrics", headers={"Authorization": f"Bearer {token}x"})
        assert_problem(wrong, 401, "unauthenticated")
        assert wrong.headers["www-authenticate"].startswith("Bearer")
        scraped = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert scraped.status_code == 200, scraped.text
    assert "storefront_http_requests" in scraped.text
