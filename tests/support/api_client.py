"""A real storefront for contract tests of API.md: its own Redis, `python -m app.web.serve`,
worker processes, and HTTP / WebSocket clients signed in as the development users.

Every test module starts one `running_storefront(...)` (module-scoped fixture) and isolates its
tests by unique skus, so nothing needs flushing between tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from app.adapters.embedded_redis import free_port
from app.kernel.command_status import FINAL
from tests.support.polling import eventually, eventually_sync
from tests.support.processes import Proc, ProcessGroup
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_server import RedisServer, running_redis

COOKIE = "sf_session"
LOGIN_TOKEN_COOKIE = "sf_login"
DEVICE_COOKIE = "sf_device"
_LOGIN_TOKEN = re.compile(r'name="login_token" value="([^"]+)"')
PROBLEM_JSON = "application/problem+json"
PASSWORDS = {"admin": "admin-pass", "alice": "alice-pass", "bob": "bob-pass"}
WORKER_MODULES = {
    "commands": "workers.commands",
    "projector": "workers.projector",
    "process": "workers.process",
    "notifier": "workers.notifier",
    "archiver": "workers.archiver",
}
ALL_WORKERS = tuple(WORKER_MODULES)
GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"


@dataclass(frozen=True)
class Identity:
    """A signed-in user: the session cookie's token and the session's CSRF token."""

    username: str
    roles: tuple[str, ...]
    token: str
    csrf_token: str


@dataclass
class Storefront:
    """One web process (and optional workers) over a Redis server owned by the test module
    (or the session's cluster)."""

    redis: RedisServer | RedisCluster
    group: ProcessGroup
    port: int
    web: Proc
    workers: dict[str, Proc] = field(default_factory=dict)
    _identities: dict[str, Identity] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def origin(self) -> str:
        """The app's own Origin, as a browser on its pages would send it."""
        return self.base_url

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start_workers(self, kinds: Sequence[str]) -> None:
        for kind in kinds:
            if kind not in self.workers or not self.workers[kind].alive():
                self.workers[kind] = self.group.start(kind, WORKER_MODULES[kind])

    def stop_workers(self, kinds: Sequence[str]) -> None:
        for kind in kinds:
            proc = self.workers.pop(kind, None)
            if proc is not None:
                proc.stop()

    def login(self, username: str, password: str | None = None) -> Identity:
        """A fresh session (POST /api/session)."""
        response = httpx.post(
            f"{self.base_url}/api/session",
            json={"username": username, "password": password or PASSWORDS[username]},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        return Identity(
            body["username"], tuple(body["roles"]), response.cookies[COOKIE], body["csrf_token"]
        )

    def identity(self, username: str) -> Identity:
        """A session shared by the module's tests (never log it out; use `login` for that)."""
        if username not in self._identities:
            self._identities[username] = self.login(username)
        return self._identities[username]

    def client(
        self,
        who: Identity | str | None = None,
        *,
        csrf: bool = True,
        headers: dict[str, str] | None = None,
    ) -> httpx.AsyncClient:
        """An async client, anonymous or with `who`'s cookie (and X-CSRF-Token if `csrf`)."""
        identity = self.identity(who) if isinstance(who, str) else who
        all_headers = dict(headers or {})
        cookies = {}
        if identity is not None:
            cookies[COOKIE] = identity.token
            if csrf:
                all_headers["X-CSRF-Token"] = identity.csrf_token
        return httpx.AsyncClient(
            base_url=self.base_url, cookies=cookies, headers=all_headers, timeout=30
        )

    def ws(
        self,
        path: str = "/api/ws",
        who: Identity | str | None = None,
        *,
        origin: str | None = None,
    ) -> connect:
        """A WebSocket connection (use with `async with`), with `who`'s cookie if given."""
        identity = self.identity(who) if isinstance(who, str) else who
        headers = {"Cookie": f"{COOKIE}={identity.token}"} if identity is not None else {}
        return connect(
            f"{self.ws_url}{path}",
            origin=origin,  # type: ignore[arg-type]
            additional_headers=headers,
            open_timeout=15,
            proxy=None,
        )


def base_env(redis_url: str, **overrides: str) -> dict[str, str]:
    env = {
        "REDIS_URL": redis_url,
        "APP_ENV": "development",
        "SECRET_KEY": "",
        "PARTITIONS": "4",
        "PAYMENT_LATENCY_MS": "0",
        "PAYMENT_FAILURE_RATE": "0",
        "LOG_LEVEL": "WARNING",
        "PUBLIC_ORIGIN": "",
        "READ_REDIS_URL": "",
    }
    env.update(overrides)
    return env


def start_web(group: ProcessGroup, port: int, *, wait_for_seed: bool = True) -> Proc:
    """Start `python -m app.web.serve` on `port`; return once it serves (and, in development,
    once /readyz says the seed is in place)."""
    web = group.start("web", "app.web.serve", extra_env={"PORT": str(port)})
    base = f"http://127.0.0.1:{port}"

    def probe() -> bool:
        assert web.alive(), f"web exited with {web.popen.returncode}:\n{web.output()}"
        try:
            if not wait_for_seed:
                return httpx.get(f"{base}/healthz", timeout=5).status_code == 200
            checks = httpx.get(f"{base}/readyz", timeout=5).json()["checks"]
            return bool(checks.get("seed") == "ok")
        except (httpx.TransportError, ValueError, KeyError):
            return False

    eventually_sync(probe, timeout=60, message="web process serving")
    return web


@contextlib.contextmanager
def running_storefront(
    directory: Path,
    *,
    workers: Sequence[str] = (),
    appendonly: bool = False,
    redis_password: str | None = None,
    cluster: RedisCluster | None = None,
    **env: str,
) -> Iterator[Storefront]:
    """Redis (asking for `redis_password`, if given) + web (+ workers), all stopped on exit
    whatever happens. On `cluster` (flushed first) instead of a server of its own: both the
    write side and the read models."""
    logs = directory / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        if cluster is None:
            redis: RedisServer | RedisCluster = stack.enter_context(
                running_redis(directory / "redis", appendonly=appendonly, password=redis_password)
            )
        else:
            cluster.flushall()
            redis = cluster
        group = ProcessGroup(logs, base_env(redis.url, **env))
        try:
            port = free_port()
            web = start_web(group, port)
            storefront = Storefront(redis, group, port, web)
            storefront.start_workers(workers)
            yield storefront
        finally:
            stop_together(group)


def stop_together(group: ProcessGroup, timeout: float = 10.0) -> None:
    """SIGTERM every process at once, wait for all (bounded), SIGKILL whatever is left."""
    for proc in group.procs:
        if proc.alive():
            proc.popen.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in group.procs:
        try:
            proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
    group.stop_all()  # nothing left alive; kept so the harness's own guarantees apply


# --- test data and assertions ------------------------------------------------------------------


def unique_sku(prefix: str = "T") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12].upper()}"


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """A problem+json response with the contract's fields, `status` and `code`."""
    assert response.status_code == status, (response.status_code, response.text)
    media = response.headers.get("content-type", "").split(";")[0].strip()
    assert media == PROBLEM_JSON, response.headers
    body: dict[str, Any] = response.json()
    for name in ("type", "title", "status", "code", "detail"):
        assert name in body, (name, body)
    assert body["status"] == status, body
    assert body["code"] == code, body
    assert "Traceback" not in response.text
    return body


async def login_form_fields(browser: httpx.AsyncClient) -> dict[str, str]:
    """GET /login as a browser would: the client keeps the pre-session cookie; returns the
    form's hidden token field, to post back with the credentials."""
    page = await browser.get("/login")
    assert page.status_code == 200, page.text
    found = _LOGIN_TOKEN.search(page.text)
    assert found is not None, page.text
    return {"login_token": found.group(1)}


def error_paths(body: dict[str, Any]) -> list[str]:
    return [error["path"] for error in body.get("errors") or []]


async def send(client: httpx.AsyncClient, body: dict[str, Any], **headers: str) -> httpx.Response:
    """POST /api/commands with a JSON body; header names use '_' for '-'."""
    extra = {name.replace("_", "-"): value for name, value in headers.items()}
    return await client.post("/api/commands", json=body, headers=extra)


async def create_product(
    admin: httpx.AsyncClient, sku: str | None = None, *, stock: int = 10, price: int = 1000
) -> tuple[str, dict[str, Any]]:
    """CreateProduct (sync); the sku and the 200 body."""
    sku = sku or unique_sku()
    response = await send(
        admin,
        {
            "type": "CreateProduct",
            "sku": sku,
            "name": f"Product {sku}",
            "price_cents": price,
            "initial_stock": stock,
        },
    )
    assert response.status_code == 200, response.text
    return sku, response.json()


async def wait_for_command(
    client: httpx.AsyncClient, command_id: str, *, until: Collection[str] = FINAL
) -> dict[str, Any]:
    """GET /api/commands/<id> until its status is one of `until`."""

    async def probe() -> dict[str, Any]:
        response = await client.get(f"/api/commands/{command_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    return await eventually(
        probe, until=lambda body: body["status"] in until, timeout=30, message="command status"
    )


async def place_order(
    customer: httpx.AsyncClient,
    lines: Sequence[tuple[str, int]],
    card: str = GOOD_CARD,
    **headers: str,
) -> str:
    """PlaceOrder (async, 202); the command id."""
    response = await send(
        customer,
        {
            "type": "PlaceOrder",
            "lines": [{"sku": sku, "quantity": quantity} for sku, quantity in lines],
            "card_number": card,
        },
        **headers,
    )
    assert response.status_code == 202, response.text
    command_id: str = response.json()["command_id"]
    return command_id


async def find_order(
    client: httpx.AsyncClient,
    sku: str,
    *,
    status: str | Sequence[str] | None = None,
) -> dict[str, Any]:
    """The order (from GET /api/orders) holding `sku`, once its status is `status`."""
    wanted = (status,) if isinstance(status, str) else status

    async def probe() -> dict[str, Any] | None:
        response = await client.get("/api/orders")
        assert response.status_code == 200, response.text
        for order in response.json():
            mine = any(line["sku"] == sku for line in order["lines"])
            if mine and (wanted is None or order["status"] in wanted):
                found: dict[str, Any] = order
                return found
        return None

    found = await eventually(probe, timeout=30, message=f"order with {sku} in {wanted}")
    assert found is not None
    return found


async def placed_order(
    customer: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    *,
    card: str = GOOD_CARD,
    status: str | Sequence[str] = "confirmed",
) -> tuple[str, str, str]:
    """A fresh product and an order for it, once the order reached `status`.

    Returns (sku, order command id, order id).
    """
    sku, _ = await create_product(admin, stock=50)
    command_id = await place_order(customer, [(sku, 1)], card)
    await wait_for_command(customer, command_id)
    order = await find_order(customer, sku, status=status)
    return sku, command_id, order["order_id"]


# --- WebSocket messages ----------------------------------------------------------------------


async def receive_json(ws: ClientConnection, within: float = 20.0) -> dict[str, Any]:
    """The next message, decoded; fail if none comes `within` seconds."""
    raw = await asyncio.wait_for(ws.recv(), timeout=within)
    message: dict[str, Any] = json.loads(raw)
    return message


async def receive_until(
    ws: ClientConnection,
    predicate: Callable[[Any], bool],
    *,
    seen: list[Any] | None = None,
    within: float = 20.0,
    decode: bool = True,
    look_back: bool = False,
) -> Any:
    """Read messages (kept in `seen`) until one satisfies `predicate`; fail after `within` s.

    `look_back`: a message already in `seen` counts too (pushes of different streams may
    arrive in either order).
    """
    seen = [] if seen is None else seen
    if look_back:
        for message in seen:
            if predicate(message):
                return message
    deadline = time.monotonic() + within
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no matching message in {within}s; got {seen!r}")
        try:
            raw = await asyncio.wait_for(ws.recv(), timeout=left)
        except TimeoutError:
            raise AssertionError(f"no matching message in {within}s; got {seen!r}") from None
        message = json.loads(raw) if decode else raw
        seen.append(message)
        if predicate(message):
            return message
