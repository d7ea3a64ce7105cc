"""API.md: Redis unreachable → 503 `unavailable` ("nothing was accepted"), never a 500.

The module owns its Redis (append-only file on), kills it with SIGKILL while the web process
runs, and restarts it on the same port: the very same request then succeeds.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import redis

from tests.support.api_client import Storefront, assert_problem, running_storefront, unique_sku
from tests.support.polling import eventually


@pytest.fixture(scope="module")
def storefront(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storefront]:
    with running_storefront(tmp_path_factory.mktemp("outage"), appendonly=True) as made:
        yield made


def make_durable(url: str) -> None:
    """Wait until every write so far is fsynced to the append-only file.

    WAITAOF (Redis 7.2+, Valkey) says so explicitly; Redis 7.0 lacks it, and there
    `appendfsync always` means every write was fsynced before it was answered.
    """
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        client.set("test:fsync-barrier", "1")
        try:
            local, _replicas = client.waitaof(1, 0, 10_000)
        except redis.ResponseError as exc:
            assert "unknown command" in str(exc).lower(), exc
            assert client.config_get("appendfsync")["appendfsync"] == "always"
        else:
            assert local == 1
    finally:
        client.close()


def create_body(sku: str) -> dict[str, object]:
    return {"type": "CreateProduct", "sku": sku, "name": "Outage mug", "price_cents": 700}


async def test_commands_and_queries_answer_503_while_redis_is_down_then_recover(
    storefront: Storefront,
) -> None:
    """Kill Redis: 503 unavailable everywhere; restart it: the same POST then succeeds (200)."""
    identity = storefront.identity("admin")
    make_durable(storefront.redis.url)  # the session must survive the crash
    sku = unique_sku("DOWN")
    storefront.redis.kill()
    try:
        async with storefront.client(identity) as admin, storefront.client() as anon:
            down = await admin.post("/api/commands", json=create_body(sku))
            assert_problem(down, 503, "unavailable")
            for path in ("/api/products", f"/api/products/{sku}", "/api/commands/abc-1"):
                assert_problem(await anon.get(path), 503, "unavailable")
            assert_problem(await admin.get("/api/orders"), 503, "unavailable")
            assert_problem(await admin.get("/api/admin/status"), 503, "unavailable")
            login = await anon.post(
                "/api/session", json={"username": "alice", "password": "alice-pass"}
            )
            assert_problem(login, 503, "unavailable")
            page = await anon.get("/", headers={"Accept": "text/html"})
            assert page.status_code == 503
            assert "Traceback" not in page.text
            assert (await anon.get("/healthz")).status_code == 200  # the process is alive
            ready = await anon.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["redis"].startswith("unreachable"), ready.json()
            metrics = await anon.get("/metrics")  # monitoring still answers
            assert metrics.status_code == 200
            assert "storefront_http_requests_total" in metrics.text
            assert storefront.web.alive()
    finally:
        storefront.redis.restart()

    async with storefront.client(identity) as admin:
        answers: list[int] = []

        async def retry() -> httpx.Response:
            response = await admin.post("/api/commands", json=create_body(sku))
            answers.append(response.status_code)
            if response.status_code == 503:
                assert_problem(response, 503, "unavailable")
            return response

        up = await eventually(retry, until=lambda r: r.status_code != 503, message="redis back")
        assert up.status_code == 200, (answers, up.text)  # so the 503 attempts accepted nothing
        assert set(answers) <= {200, 503}, answers
        status = await admin.get(f"/api/commands/{up.json()['command_id']}")
        assert status.status_code == 200
        assert status.json()["status"] == "succeeded"
        again = await admin.post("/api/commands", json=create_body(sku))
        assert_problem(again, 409, "sku_exists")  # and the 200 was a real, durable write
