"""End-to-end fixtures: the real app in processes (Redis, uvicorn, every worker) and Chromium."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.adapters.embedded_redis import free_port
from tests.support.polling import eventually_sync
from tests.support.processes import ProcessGroup
from tests.support.redis_server import RedisServer, running_redis

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
WORKERS = ("commands", "projector", "process", "notifier", "archiver")


@dataclass
class Stack:
    base_url: str
    redis: RedisServer
    processes: ProcessGroup

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.base_url + path, timeout=5) as reply:
                return reply.status, reply.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except OSError:
            return 0, b""


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("stack")
    with running_redis(root / "redis", appendonly=True) as redis_server:
        port = free_port()
        group = ProcessGroup(
            root,
            {
                "REDIS_URL": redis_server.url,
                "PORT": str(port),
                "APP_ENV": "development",
                "PAYMENT_LATENCY_MS": "30",
                "PAYMENT_FAILURE_RATE": "0",
                "LOG_LEVEL": "INFO",
            },
        )
        made = Stack(f"http://127.0.0.1:{port}", redis_server, group)
        try:
            group.start("web", "app.web.serve")
            for kind in WORKERS:
                group.start(kind, f"workers.{kind}")
            eventually_sync(
                lambda: made.get("/readyz")[0],
                until=lambda code: code == 200,
                timeout=60,
                message="stack ready",
            )
            eventually_sync(  # the development seed ran and was projected
                lambda: made.get("/api/products/LAMP-01")[0],
                until=lambda code: code == 200,
                timeout=60,
                message="seed projected",
            )
            yield made
        finally:
            group.stop_all()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One Chromium per module: Playwright's sync API holds an event loop in this thread while
    it runs, so it must be gone before a worker process (pytest -n) runs async tests."""
    if not Path(CHROMIUM).exists():
        reason = (
            f"no Chromium at {CHROMIUM}: install Debian's `chromium` package to run browser tests"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def new_context(browser: object, stack: Stack) -> Iterator[Callable[..., object]]:
    """Make browser contexts (separate cookie jars = separate users); all closed afterwards."""
    from playwright.sync_api import Browser

    assert isinstance(browser, Browser)
    contexts = []

    def make(user: str | None = None, password: str | None = None, **options: Any) -> object:
        """`options`: Playwright's context options (e.g. `viewport`, `is_mobile`)."""
        context = browser.new_context(base_url=stack.base_url, **options)
        context.set_default_timeout(15_000)
        contexts.append(context)
        if user is not None:
            page = context.new_page()
            page.goto("/login")
            page.fill("input[name=username]", user)
            page.fill("input[name=password]", password or f"{user}-pass")
            page.click("form[action='/login'] button[type=submit]")
            page.wait_for_url(f"{stack.base_url}/")
            page.close()
        return context

    yield make
    for context in contexts:
        context.close()
