"""Scaled out on a Redis Cluster: two web processes and two of every worker kind.

Both sides run on a local 3-master cluster: events, statuses and read models.
Each worker kind shares the partitions between its two processes, and a command sent
through web A reaches a socket held by web B.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from app.adapters.embedded_redis import free_port
from tests.support.api_client import (
    ALL_WORKERS,
    COOKIE,
    PASSWORDS,
    WORKER_MODULES,
    base_env,
    receive_until,
    start_web,
    stop_together,
    unique_sku,
)
from tests.support.polling import eventually
from tests.support.processes import ProcessGroup
from tests.support.redis_cluster import RedisCluster

PARTITIONS = 4


@pytest.fixture
def stack(redis_cluster: RedisCluster, log_dir: Path) -> Iterator[tuple[str, str]]:
    """Two web processes (their base URLs) and two of each worker, on the cluster."""
    redis_cluster.flushall()
    group = ProcessGroup(
        log_dir,
        base_env(
            redis_cluster.url,
            PARTITIONS=str(PARTITIONS),
            LEASE_MS="3000",
        ),
    )
    try:
        ports = [free_port(), free_port()]
        for port in ports:
            start_web(group, port)
        for kind in ALL_WORKERS:
            for _ in range(2):
                group.start(kind, WORKER_MODULES[kind])
        yield tuple(f"http://127.0.0.1:{port}" for port in ports)  # type: ignore[misc]
    finally:
        stop_together(group)


def _flat(message: Any) -> list[dict[str, Any]]:
    """A frame may hold one message or a batch of them."""
    return message if isinstance(message, list) else [message]


async def _login(base: str, username: str) -> tuple[str, str]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        response = await client.post(
            "/api/session", json={"username": username, "password": PASSWORDS[username]}
        )
        assert response.status_code == 200, response.text
        return response.cookies[COOKIE], response.json()["csrf_token"]


async def test_a_command_sent_through_web_a_reaches_a_socket_on_web_b(
    stack: tuple[str, str],
) -> None:
    web_a, web_b = stack
    admin_token, admin_csrf = await _login(web_a, "admin")
    alice_token, alice_csrf = await _login(web_a, "alice")
    admin = httpx.AsyncClient(
        base_url=web_a,
        cookies={COOKIE: admin_token},
        headers={"X-CSRF-Token": admin_csrf},
        timeout=30,
    )
    alice = httpx.AsyncClient(
        base_url=web_a,
        cookies={COOKIE: alice_token},
        headers={"X-CSRF-Token": alice_csrf},
        timeout=30,
    )
    try:

        async def shared_out() -> dict[str, list[int]]:
            status = (await admin.get("/api/admin/status")).json()
            held: dict[str, list[int]] = {}
            for worker in status["workers"]:
                held.setdefault(worker["kind"], []).append(worker["info"].get("partitions", 0))
            return held

        # every worker kind runs twice, and the two share the partitions out
        await eventually(
            shared_out,
            until=lambda held: all(
                len(held.get(kind, [])) == 2 and held[kind][0] == held[kind][1] > 0
                for kind in ALL_WORKERS
            ),
            timeout=60,
            message="partitions shared out between two workers of each kind",
        )

        sku = unique_sku("SCALE")
        created = await admin.post(
            "/api/commands",
            json={
                "type": "CreateProduct",
                "sku": sku,
                "name": "Scaled mug",
                "price_cents": 900,
                "initial_stock": 10,
            },
        )
        assert created.status_code == 200, created.text
        ws_b = web_b.replace("http://", "ws://") + "/api/ws"
        async with connect(
            ws_b, additional_headers={"Cookie": f"{COOKIE}={alice_token}"}, proxy=None
        ) as socket:
            seen: list[Any] = []
            await socket.send(json.dumps({"subscribe": ["commands", "catalog"]}))
            await receive_until(
                socket,
                lambda m: any(x.get("type") == "subscribed" for x in _flat(m)),
                seen=seen,
            )
            placed = await alice.post(
                "/api/commands",
                json={
                    "type": "PlaceOrder",
                    "lines": [{"sku": sku, "quantity": 3}],
                    "card_number": "4242424242424242",
                },
            )
            assert placed.status_code == 202, placed.text
            command_id = placed.json()["command_id"]

            def finished(message: Any) -> bool:
                return any(
                    m.get("type") == "command"
                    and m.get("command_id") == command_id
                    and m.get("status") == "succeeded"
                    for m in _flat(message)
                )

            def sold(message: Any) -> bool:
                return any(
                    m.get("type") == "view"
                    and m.get("key") == sku
                    and m["data"]["available"] == 7
                    and m["data"]["sold"] == 3
                    for m in _flat(message)
                )

            await receive_until(socket, finished, seen=seen, within=30, look_back=True)
            await receive_until(socket, sold, seen=seen, within=30, look_back=True)

        # the final position covers the stock the order took: a read waits for it
        status = (await alice.get(f"/api/commands/{command_id}")).json()
        product = await alice.get(
            f"/api/products/{sku}", params={"min_position": status["position"]}
        )
        assert product.headers.get("X-Consistency") != "stale"
        assert (product.json()["available"], product.json()["sold"]) == (7, 3)
    finally:
        await admin.aclose()
        await alice.aclose()
