"""API.md "Operations": /healthz, /readyz (Redis and worker heartbeats), /metrics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.adapters.embedded_redis import free_port
from tests.support.api_client import (
    ALL_WORKERS,
    PASSWORDS,
    WORKER_MODULES,
    Storefront,
    base_env,
    running_storefront,
    stop_together,
)
from tests.support.polling import eventually
from tests.support.processes import ProcessGroup
from tests.support.redis_server import running_redis

PARTITIONS = 4  # the stack's default (base_env)


@pytest.fixture(scope="module")
def storefront(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storefront]:
    with running_storefront(tmp_path_factory.mktemp("operations")) as made:
        yield made


async def test_healthz_is_200_while_the_process_lives(storefront: Storefront) -> None:
    """/healthz: 200 {"status": "ok"}, without a session."""
    async with storefront.client() as anon:
        response = await anon.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_metrics_are_prometheus_text_with_storefront_names(storefront: Storefront) -> None:
    """/metrics parses as Prometheus text; every family is storefront_*; HTTP and lag included."""
    async with storefront.client() as anon:
        assert (await anon.get("/healthz")).status_code == 200
        response = await anon.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "version=0.0.4" in response.headers["content-type"]
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert families, response.text[:500]
    assert all(name.startswith("storefront_") for name in families), sorted(families)
    samples = families["storefront_http_requests"].samples
    requests = [s for s in samples if s.name.endswith("_total")]
    assert any(
        s.labels == {"method": "GET", "route": "/healthz", "status": "200"} and s.value >= 1
        for s in requests
    ), requests
    lag = families["storefront_consumer_lag_events"].samples
    assert {"catalog", "orders", "commands"} <= {s.labels["consumer"] for s in lag}, lag
    by_partition = families["storefront_projection_lag_events"].samples
    for total in lag:  # a consumer's lag is its partitions' lag, each partition once
        consumer = total.labels["consumer"]
        parts = [s.value for s in by_partition if s.labels["projection"] == consumer]
        assert (len(parts), sum(parts)) == (PARTITIONS, total.value), (consumer, by_partition)


async def test_readyz_is_503_without_workers_and_200_with_every_kind(
    storefront: Storefront,
) -> None:
    """/readyz: 503 naming each missing worker kind; 200 once every kind heartbeats; 503 again."""
    async with storefront.client() as anon:
        not_ready = await anon.get("/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json() == {
            "status": "not_ready",
            "checks": {
                "seed": "ok",
                "redis": "ok",
                "commands": "no heartbeat",
                "projector": "no heartbeat",
                "process": "no heartbeat",
                "notifier": "no heartbeat",
                "archiver": "no heartbeat",
            },
            "paused": {},  # consumers an operator paused: none
        }

        storefront.start_workers(ALL_WORKERS)

        async def probe() -> httpx.Response:
            return await anon.get("/readyz")

        ready = await eventually(probe, until=lambda r: r.status_code == 200, timeout=30)
        body: dict[str, Any] = ready.json()
        assert body == {
            "status": "ready",
            "checks": {"seed": "ok", "redis": "ok", **{kind: "ok" for kind in ALL_WORKERS}},
            "paused": {},
        }

        storefront.stop_workers(["commands"])  # a clean stop removes its heartbeat
        again = await eventually(probe, until=lambda r: r.status_code == 503, timeout=30)
        assert again.json()["checks"]["commands"] == "no heartbeat"
        assert again.json()["checks"]["projector"] == "ok"


async def test_ready_means_the_seeded_users_can_sign_in_at_once(tmp_path: Path) -> None:
    """/readyz said ready before the development users existed (its workers were already
    heartbeating), so signing in right after start failed; now ready includes the seed."""
    with running_redis(tmp_path / "redis") as redis_server:
        group = ProcessGroup(tmp_path, base_env(redis_server.url))
        try:
            for kind in ALL_WORKERS:
                group.start(kind, WORKER_MODULES[kind])
            port = free_port()
            group.start("web", "app.web.serve", extra_env={"PORT": str(port)})
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as anon:

                async def probe() -> int:
                    try:
                        return (await anon.get("/readyz")).status_code
                    except httpx.TransportError:
                        return 0

                await eventually(probe, until=lambda status: status == 200, timeout=60)
                ready = (await anon.get("/readyz")).json()
                for username, password in PASSWORDS.items():
                    response = await anon.post(
                        "/api/session", json={"username": username, "password": password}
                    )
                    assert response.status_code == 200, (username, response.text)
            assert ready["checks"]["seed"] == "ok", ready
        finally:
            stop_together(group)
